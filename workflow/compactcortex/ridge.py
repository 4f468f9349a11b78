"""Multi-output ridge regression with the penalty (and the feature set) chosen by K-fold cross-validation.

Used for the task-driven baselines (frozen ImageNet features of several candidate layers -> each neuron)
and for the optional ridge readout from an ensemble's embedding to a held-out session's neurons.

Design
------
- Centring: X and Y are centred with the means of the rows fitted (kept in the model), so the
  intercept is unpenalised and equals the mean response.
- Standardising: ``fit_ridge`` does not scale features unless asked (``standardize=True``);
  ``cross_validate_ridge`` z-scores columns by default (population sd of the rows it is given;
  constant columns keep scale 1). The statistics live in the model and ``predict`` applies them, so
  weights are in standardised units. Penalties therefore act on unit-variance features: the trace of
  the kernel is about n * p, so useful alphas grow with p; pass a wide log grid and check
  ``report["fraction_alpha_at_grid_edge"]``.
- All alphas at once: with p < n, the thin SVD of the centred X; with p >= n, the eigendecomposition of
  the n x n kernel (computed over column blocks, never a centred copy of X). Either way
  W(alpha) = B diag(1 / (s^2 + alpha)) Q, so each alpha (or one alpha per output) costs one product.
- Memory: nothing of size (alphas, p, k) is ever built. A ``RidgeSolution`` keeps the spectral factors
  (and, for p >= n, a reference to X); weights are formed for the alpha(s) asked for only.
- Cross-validation: folds are seeded and shared by every feature set (a paired comparison). In the
  kernel route one n x n kernel per feature set serves every fold (each fold re-centres its training
  block exactly). The score is the out-of-fold R^2 per output, pooled over folds, relative to predicting
  each fold's training mean: 1 - sum (y - yhat)^2 / sum (y - mean_train)^2. R^2 (not correlation) is
  used because it penalises over-shrunk predictions, so it picks the penalty that minimises the error
  (pure noise -> the largest alpha, whose score tends to 0). Ties go to the larger alpha.
- Only the rows passed are used: no global state, so the caller must pass the training half only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeModel", "RidgeSolution", "cross_validate_ridge", "fit_ridge", "kfold_indices"]

_BLOCK_ELEMENTS = 1 << 22  # float64 elements per working block (32 MiB)
_CONSTANT_REL_SD = 1e-9  # a column whose sd is below this fraction of |mean| is constant
SCORE_NAME = "cv_r2"


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------


def _check_finite(name: str, arr: np.ndarray) -> None:
    """Raise ValueError naming the array if it holds NaN or infinite values."""
    if np.isfinite(arr).all():
        return
    n_nan = int(np.count_nonzero(np.isnan(arr)))
    n_inf = int(np.count_nonzero(np.isinf(arr)))
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    raise ValueError(
        f"{name} contains {n_nan} NaN and {n_inf} infinite value(s) (first at index {first}); "
        "ridge regression needs finite values"
    )


def _check_matrix(name: str, a: np.ndarray, n_rows: int | None = None) -> np.ndarray:
    """A 2-D finite float array (float32 kept, other types -> float64), optionally with n_rows rows."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, columns); got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 rows and 1 column; got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but Y has {n_rows}; they must be the same images")
    _check_finite(name, arr)
    return arr


def _check_alphas(alphas: np.ndarray | list[float]) -> np.ndarray:
    """Sorted unique positive finite penalties."""
    arr = np.asarray(alphas, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr[np.newaxis]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"alphas must be finite and > 0; got {arr.tolist()}")
    return np.unique(arr)


def _check_feature_sets(feature_sets: Mapping[str, np.ndarray], n_rows: int) -> dict[str, np.ndarray]:
    """Validated feature sets, in the mapping's order."""
    if not isinstance(feature_sets, Mapping) or len(feature_sets) == 0:
        raise ValueError("feature_sets must be a non-empty mapping of name -> (n, p) array")
    return {str(name): _check_matrix(f"X (feature set {name!r})", X, n_rows=n_rows) for name, X in feature_sets.items()}


# --------------------------------------------------------------------------------------------------
# blockwise linear algebra on (X - mean) / scale without a full float64 copy
# --------------------------------------------------------------------------------------------------


def _column_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Column slices whose blocks hold about _BLOCK_ELEMENTS values."""
    step = max(1, _BLOCK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_cols, step):
        yield slice(start, min(start + step, n_cols))


def _scaled_block(X: np.ndarray, cols: slice, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(X[:, cols] - mean) / scale in float64."""
    block = np.asarray(X[:, cols], dtype=np.float64) - mean[cols]
    block /= scale[cols]
    return block


def _column_stats(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales (population sd if standardize, else ones; constant columns get 1)."""
    n, p = X.shape
    mean = np.empty(p)
    scale = np.ones(p)
    for cols in _column_blocks(n, p):
        block = np.asarray(X[:, cols], dtype=np.float64)
        mean[cols] = block.mean(axis=0)
        if standardize:
            sd = np.sqrt(np.mean((block - mean[cols]) ** 2, axis=0))
            constant = sd <= _CONSTANT_REL_SD * np.abs(mean[cols])
            scale[cols] = np.where(constant, 1.0, sd)
    return mean, scale


def _gram(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The n x n kernel Z Z^T of Z = (X - mean) / scale."""
    n, p = X.shape
    gram = np.zeros((n, n))
    for cols in _column_blocks(n, p):
        block = _scaled_block(X, cols, mean, scale)
        gram += block @ block.T
    return gram


def _cross_gram(X_new: np.ndarray, X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Z_new Z^T (m x n), both standardised with the same statistics."""
    cross = np.zeros((X_new.shape[0], X.shape[0]))
    for cols in _column_blocks(X.shape[0] + X_new.shape[0], X.shape[1]):
        cross += _scaled_block(X_new, cols, mean, scale) @ _scaled_block(X, cols, mean, scale).T
    return cross


def _times(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Z B (n x r) for Z = (X - mean) / scale."""
    n, p = X.shape
    out = np.zeros((n, B.shape[1]))
    for cols in _column_blocks(n, p):
        out += _scaled_block(X, cols, mean, scale) @ B[cols]
    return out


def _transpose_times(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Z^T M (p x k) for Z = (X - mean) / scale."""
    n, p = X.shape
    out = np.empty((p, M.shape[1]))
    for cols in _column_blocks(n, p):
        out[cols] = _scaled_block(X, cols, mean, scale).T @ M
    return out


def _eigh_nonzero(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric PSD kernel, dropping the numerically zero ones."""
    vals, vecs = np.linalg.eigh(kernel)
    tol = max(float(vals[-1]), 0.0) * kernel.shape[0] * np.finfo(np.float64).eps
    keep = vals > tol
    return vals[keep], vecs[:, keep]


def _double_centre(kernel: np.ndarray) -> np.ndarray:
    """H K H with H the centring matrix."""
    row = kernel.mean(axis=1, keepdims=True)
    return kernel - row - row.T + row.mean()


# --------------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RidgeModel:
    """A fitted ridge map: predict(X) = ((X - feature_mean) / feature_scale) @ weights + intercept."""

    weights: np.ndarray  # (p, k), in standardised feature units
    intercept: np.ndarray  # (k,)
    alpha: np.ndarray  # (k,) the penalty of each output (all equal if one alpha was chosen)
    feature_mean: np.ndarray  # (p,)
    feature_scale: np.ndarray  # (p,) ones when features were not standardised
    feature_set: str | None = None  # the name of the chosen feature set, if chosen by cross_validate_ridge

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.weights.shape[1])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions (m, k) for features X (m, p), processed in row blocks."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must be shaped (m, {self.n_features}); got shape {X.shape}")
        _check_finite("X", X)
        out = np.empty((X.shape[0], self.n_outputs))
        step = max(1, _BLOCK_ELEMENTS // self.n_features)
        for start in range(0, X.shape[0], step):
            rows = slice(start, start + step)
            z = (np.asarray(X[rows], dtype=np.float64) - self.feature_mean) / self.feature_scale
            out[rows] = z @ self.weights + self.intercept
        return out


@dataclass(eq=False)
class RidgeSolution:
    """Ridge fits for every alpha at once: W(alpha) = B diag(1 / (eigenvalues + alpha)) projection.

    B is ``basis`` (p, r) for the primal route, or Z^T basis with basis (n, r) for the kernel route
    (``train_features`` is then the fitted X itself, not a copy: do not modify it in place).
    """

    alphas: np.ndarray  # (a,) sorted
    feature_mean: np.ndarray  # (p,)
    feature_scale: np.ndarray  # (p,)
    target_mean: np.ndarray  # (k,)
    eigenvalues: np.ndarray  # (r,) nonzero squared singular values of the centred (scaled) X
    basis: np.ndarray  # primal: right singular vectors (p, r); kernel: eigenvectors (n, r)
    projection: np.ndarray  # (r, k)
    method: str  # "primal" or "kernel"
    train_features: np.ndarray | None = None  # X, for the kernel route

    @property
    def n_outputs(self) -> int:
        return int(self.target_mean.shape[0])

    def _alpha_per_output(self, alpha: float | np.ndarray) -> np.ndarray:
        a = np.asarray(alpha, dtype=np.float64)
        if a.ndim == 0:
            a = np.full(self.n_outputs, float(a))
        if a.shape != (self.n_outputs,):
            raise ValueError(f"alpha must be a scalar or shaped ({self.n_outputs},); got shape {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError("alpha must be finite and > 0")
        return a

    def _coefficients(self, alpha: np.ndarray) -> np.ndarray:
        """(r, k) coefficients in the basis for one alpha per output."""
        return self.projection / (self.eigenvalues[:, np.newaxis] + alpha[np.newaxis, :])

    def weights(self, alpha: float | np.ndarray) -> np.ndarray:
        """Weights (p, k) for one alpha, or one alpha per output (k,)."""
        coef = self._coefficients(self._alpha_per_output(alpha))
        if self.method == "primal":
            return self.basis @ coef
        return _transpose_times(self.train_features, self.feature_mean, self.feature_scale, self.basis @ coef)

    def model(self, alpha: float | np.ndarray, feature_set: str | None = None) -> RidgeModel:
        """A standalone RidgeModel for the given alpha(s)."""
        a = self._alpha_per_output(alpha)
        return RidgeModel(
            weights=self.weights(a),
            intercept=self.target_mean.copy(),
            alpha=a,
            feature_mean=self.feature_mean.copy(),
            feature_scale=self.feature_scale.copy(),
            feature_set=feature_set,
        )

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Z_new B (m, r) without forming B for the kernel route."""
        if self.method == "primal":
            return _times(X, self.feature_mean, self.feature_scale, self.basis)
        cross = _cross_gram(X, self.train_features, self.feature_mean, self.feature_scale)
        return cross @ self.basis

    def predict_path(self, X: np.ndarray) -> np.ndarray:
        """Predictions (a, m, k) for every alpha in ``alphas``; each alpha costs one small product."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.feature_mean.shape[0]:
            raise ValueError(f"X must have {self.feature_mean.shape[0]} columns; got shape {X.shape}")
        _check_finite("X", X)
        proj = self._project(X)
        out = np.empty((self.alphas.size, X.shape[0], self.n_outputs))
        for i, a in enumerate(self.alphas):
            out[i] = self.target_mean + proj @ self._coefficients(np.full(self.n_outputs, a))
        return out


# --------------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------------


def _solve(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, mean: np.ndarray, scale: np.ndarray, method: str | None = None
) -> RidgeSolution:
    """The spectral solution for checked inputs and given feature statistics."""
    n, p = X.shape
    method = method or ("kernel" if p >= n else "primal")
    y_mean = Y.mean(axis=0)
    y_centred = Y - y_mean
    if method == "kernel":
        eigenvalues, basis = _eigh_nonzero(_gram(X, mean, scale))
        projection = basis.T @ y_centred
        train = X
    else:
        u, s, vt = np.linalg.svd(_scaled_block(X, slice(None), mean, scale), full_matrices=False)
        keep = s > (s[0] if s.size else 0.0) * max(n, p) * np.finfo(np.float64).eps
        u, s, basis = u[:, keep], s[keep], vt[keep].T
        eigenvalues = s**2
        projection = s[:, np.newaxis] * (u.T @ y_centred)
        train = None
    return RidgeSolution(alphas, mean, scale, y_mean, eigenvalues, basis, projection, method, train)


def fit_ridge(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray | list[float], *, standardize: bool = False
) -> RidgeSolution:
    """Ridge fits of Y (n, k) on X (n, p) for all alphas: minimise |Yc - Zc W|^2 + alpha |W|^2.

    Zc is X centred (and z-scored if ``standardize``); Yc is Y centred. Use ``solution.weights(alpha)``,
    ``solution.model(alpha)`` or ``solution.predict_path(X_new)``.
    """
    Y = _check_matrix("Y", Y)
    X = _check_matrix("X", X, n_rows=Y.shape[0])
    mean, scale = _column_stats(X, standardize)
    return _solve(X, Y.astype(np.float64), _check_alphas(alphas), mean, scale)


# --------------------------------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------------------------------


def kfold_indices(n: int, n_folds: int, seed: int | np.random.Generator = 0) -> list[np.ndarray]:
    """Held-out row indices (sorted) of each of n_folds random, near-equal folds of range(n)."""
    if not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    if n_folds > n:
        raise ValueError(f"n_folds ({n_folds}) exceeds the number of rows ({n})")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return [np.sort(fold) for fold in np.array_split(rng.permutation(n), n_folds)]


def _train_rows(n: int, test: np.ndarray) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask)


def _oof_kernel(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, folds: list[np.ndarray], mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Out-of-fold predictions (a, n, k) from one n x n kernel re-centred for each fold."""
    n = X.shape[0]
    gram = _gram(X, mean, scale)
    out = np.empty((alphas.size, n, Y.shape[1]))
    for test in folds:
        train = _train_rows(n, test)
        g_tt = gram[np.ix_(train, train)]
        eigenvalues, basis = _eigh_nonzero(_double_centre(g_tt))
        cross = gram[np.ix_(test, train)] - g_tt.mean(axis=0)  # test rows centred by the training mean
        cross -= cross.mean(axis=1, keepdims=True)  # training rows centred
        proj = cross @ basis
        y_mean = Y[train].mean(axis=0)
        coef = basis.T @ (Y[train] - y_mean)
        for i, a in enumerate(alphas):
            out[i, test] = y_mean + proj @ (coef / (eigenvalues[:, np.newaxis] + a))
    return out


def _oof_refit(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, folds: list[np.ndarray], scale: np.ndarray
) -> np.ndarray:
    """Out-of-fold predictions (a, n, k) by fitting each fold's training rows separately."""
    n = X.shape[0]
    out = np.empty((alphas.size, n, Y.shape[1]))
    for test in folds:
        train = _train_rows(n, test)
        x_train = X[train]
        mean = x_train.mean(axis=0, dtype=np.float64)
        out[:, test] = _solve(x_train, Y[train], alphas, mean, scale).predict_path(X[test])
    return out


def _oof_predictions(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    folds: list[np.ndarray],
    standardize: bool,
    route: str | None = None,
) -> np.ndarray:
    """Out-of-fold predictions (a, n, k); scales from all rows given, centring per fold."""
    mean, scale = _column_stats(X, standardize)
    route = route or ("kernel" if X.shape[1] >= X.shape[0] else "refit")
    if route == "kernel":
        return _oof_kernel(X, Y, alphas, folds, mean, scale)
    return _oof_refit(X, Y, alphas, folds, scale)


def _cv_r2(oof: np.ndarray, Y: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Pooled out-of-fold R^2 (a, k) against predicting each fold's training mean (0 if Y is constant)."""
    sse = np.sum((oof - Y) ** 2, axis=1)
    sse_null = np.zeros(Y.shape[1])
    for test in folds:
        train = _train_rows(Y.shape[0], test)
        sse_null += np.sum((Y[test] - Y[train].mean(axis=0)) ** 2, axis=0)
    safe = np.where(sse_null > 0, sse_null, 1.0)
    return np.where(sse_null > 0, 1.0 - sse / safe, 0.0)


def _argmax_prefer_last(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """argmax along axis, ties going to the last index (the largest alpha)."""
    flipped = np.flip(values, axis=axis)
    return values.shape[axis] - 1 - np.argmax(flipped, axis=axis)


def _choose_alphas(scores: np.ndarray, per_output: bool) -> tuple[np.ndarray, float]:
    """Alpha indices (k,) and the set's score: median over outputs of the CV score at those alphas."""
    if per_output:
        idx = _argmax_prefer_last(scores)
        return idx, float(np.median(scores[idx, np.arange(scores.shape[1])]))
    median = np.median(scores, axis=1)
    best = int(_argmax_prefer_last(median))
    return np.full(scores.shape[1], best), float(median[best])


def cross_validate_ridge(
    feature_sets: Mapping[str, np.ndarray],
    Y: np.ndarray,
    alphas: np.ndarray | list[float],
    n_folds: int = 5,
    seed: int | np.random.Generator = 0,
    per_output_alpha: bool = True,
    *,
    standardize: bool = True,
) -> tuple[RidgeModel, dict]:
    """Choose the feature set and alpha(s) by K-fold CV on the rows given, then refit on all of them.

    Each set's score is the median over outputs of its best CV R^2 (per output if per_output_alpha,
    else at the one alpha maximising the median). Returns the refitted model and a JSON-ready report.
    """
    Y = _check_matrix("Y", Y).astype(np.float64)
    sets = _check_feature_sets(feature_sets, Y.shape[0])
    alphas = _check_alphas(alphas)
    folds = kfold_indices(Y.shape[0], n_folds, seed)
    scores = {name: _cv_r2(_oof_predictions(X, Y, alphas, folds, standardize), Y, folds) for name, X in sets.items()}
    choices = {name: _choose_alphas(s, per_output_alpha) for name, s in scores.items()}
    chosen = max(choices, key=lambda name: choices[name][1])  # first set wins ties
    idx = choices[chosen][0]
    model = fit_ridge(sets[chosen], Y, alphas, standardize=standardize).model(alphas[idx], feature_set=chosen)
    report = _report(scores, choices, chosen, alphas, folds, seed, standardize, per_output_alpha)
    return model, report


def _report(
    scores: dict[str, np.ndarray],
    choices: dict[str, tuple[np.ndarray, float]],
    chosen: str,
    alphas: np.ndarray,
    folds: list[np.ndarray],
    seed: int | np.random.Generator,
    standardize: bool,
    per_output_alpha: bool,
) -> dict:
    """The CV summary: median score per set x alpha, the choice, and per-output scores."""
    idx = choices[chosen][0]
    outputs = np.arange(idx.size)
    return {
        "score": SCORE_NAME,
        "score_definition": "out-of-fold R^2 pooled over folds, against predicting the training-fold mean",
        "n_rows": int(sum(f.size for f in folds)),
        "n_folds": len(folds),
        "seed": int(seed) if isinstance(seed, int | np.integer) else None,
        "standardize": standardize,
        "per_output_alpha": per_output_alpha,
        "alphas": alphas.tolist(),
        "cv_table": {name: np.median(s, axis=1).tolist() for name, s in scores.items()},
        "set_scores": {name: choice[1] for name, choice in choices.items()},
        "chosen_set": chosen,
        "chosen_alphas": alphas[idx].tolist(),
        "cv_scores": scores[chosen][idx, outputs].tolist(),
        "cv_scores_by_set": {name: s.tolist() for name, s in scores.items()},
        "fraction_alpha_at_grid_edge": {
            "low": float(np.mean(idx == 0)),
            "high": float(np.mean(idx == alphas.size - 1)),
        },
    }
