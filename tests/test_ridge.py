"""Tests for compactcortex.ridge: exact solutions, recovery near the Bayes optimum, CV choices, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from compactcortex import ridge
from compactcortex.ridge import RidgeModel, cross_validate_ridge, fit_ridge, kfold_indices


def direct_weights(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """(Xc^T Xc + alpha I)^-1 Xc^T Yc on centred data, by a dense solve."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    return np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ Yc)


def zscore(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


def linear_problem(
    seed: int, n: int, p: int, k: int, noise_var: float, n_test: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X ~ N(0, I), W ~ N(0, 1/p) (signal variance 1), Y = X W + N(0, noise_var); train and test rows."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_test, p))
    W = rng.standard_normal((p, k)) / np.sqrt(p)
    Y = X @ W + np.sqrt(noise_var) * rng.standard_normal((n + n_test, k))
    return X[:n], Y[:n], X[n:], Y[n:]


def bayes_optimal_r2(X: np.ndarray, noise_var: float) -> float:
    """Expected held-out R^2 of the posterior mean given the training X (prior W ~ N(0, I/p), x ~ N(0, I))."""
    n, p = X.shape
    lam = noise_var * p  # noise_var / prior variance
    eig = np.linalg.eigvalsh(X.T @ X)
    trace_post = noise_var * np.sum(1.0 / (np.clip(eig, 0.0, None) + lam))
    return 1.0 - (noise_var + trace_post) / (1.0 + noise_var)


def heldout_r2(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    return 1.0 - np.mean((Y - Y_hat) ** 2, axis=0) / np.var(Y, axis=0)


# --------------------------------------------------------------------------------------------------
# exact solutions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p"), [(60, 12), (25, 90)], ids=["n>p primal", "p>n kernel"])
def test_weights_match_direct_solve(n: int, p: int) -> None:
    rng = np.random.default_rng(1)
    X = 3.0 * rng.standard_normal((n, p)) + 5.0
    Y = rng.standard_normal((n, 4)) + 2.0
    alphas = [1e-2, 1.0, 30.0, 1e4]
    sol = fit_ridge(X, Y, alphas)
    assert sol.method == ("primal" if n > p else "kernel")
    for alpha in alphas:
        expected = direct_weights(X, Y, alpha)
        np.testing.assert_allclose(sol.weights(alpha), expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    per_output = np.array([1e-2, 1.0, 30.0, 1e4])
    expected = np.column_stack([direct_weights(X, Y[:, [j]], a)[:, 0] for j, a in enumerate(per_output)])
    np.testing.assert_allclose(sol.weights(per_output), expected, rtol=1e-8, atol=1e-10)
    model = sol.model(1.0)
    np.testing.assert_allclose(model.intercept, Y.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.predict(X).mean(axis=0), Y.mean(axis=0), rtol=1e-10)


@pytest.mark.parametrize(("n", "p"), [(60, 12), (25, 90)])
def test_predict_path_equals_model_predictions(n: int, p: int) -> None:
    rng = np.random.default_rng(2)
    X, Y, X_new = rng.standard_normal((n, p)), rng.standard_normal((n, 3)), rng.standard_normal((7, p))
    sol = fit_ridge(X, Y, [0.1, 10.0, 1000.0], standardize=True)
    path = sol.predict_path(X_new)
    assert path.shape == (3, 7, 3)
    for i, alpha in enumerate(sol.alphas):
        np.testing.assert_allclose(path[i], sol.model(alpha).predict(X_new), rtol=1e-10, atol=1e-12)


def test_standardized_fit_is_a_direct_solve_on_zscored_features_and_scale_invariant() -> None:
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((40, 70)), rng.standard_normal((40, 2))
    scales = 10.0 ** rng.uniform(-3, 3, 70)
    model = fit_ridge(X * scales + 7.0, Y, [5.0], standardize=True).model(5.0)
    np.testing.assert_allclose(model.weights, direct_weights(zscore(X), Y, 5.0), rtol=1e-7, atol=1e-12)
    plain = fit_ridge(X, Y, [5.0], standardize=True).model(5.0)
    X_new = rng.standard_normal((9, 70))
    np.testing.assert_allclose(model.predict(X_new * scales + 7.0), plain.predict(X_new), rtol=1e-8, atol=1e-10)


def test_constant_columns_are_harmless_when_standardizing() -> None:
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((30, 8)), rng.standard_normal((30, 2))
    X[:, 3] = 0.1  # constant: mean not exactly representable
    X[:, 5] = 0.0
    model = fit_ridge(X, Y, [1.0], standardize=True).model(1.0)
    assert np.all(np.isfinite(model.weights))
    assert model.feature_scale[3] == 1.0 and model.feature_scale[5] == 1.0
    assert np.abs(model.weights[[3, 5]]).max() < 1e-12
    keep = [0, 1, 2, 4, 6, 7]
    np.testing.assert_allclose(model.weights[keep], direct_weights(zscore(X[:, keep]), Y, 1.0), rtol=1e-8)


def test_column_blocks_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((20, 150)).astype(np.float32), rng.standard_normal((20, 3))
    whole = fit_ridge(X, Y, [2.0], standardize=True).model(2.0)
    monkeypatch.setattr(ridge, "_BLOCK_ELEMENTS", 64)  # 3 columns per block
    blocked = fit_ridge(X, Y, [2.0], standardize=True).model(2.0)
    np.testing.assert_allclose(blocked.weights, whole.weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(blocked.predict(X), whole.predict(X), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# cross-validation internals
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p"), [(40, 100), (50, 9)])
@pytest.mark.parametrize("standardize", [False, True])
def test_shared_kernel_cv_equals_refitting_each_fold(n: int, p: int, standardize: bool) -> None:
    rng = np.random.default_rng(6)
    X, Y = 2.0 * rng.standard_normal((n, p)) + 1.0, rng.standard_normal((n, 3))
    alphas, folds = np.array([0.1, 10.0, 1e3]), kfold_indices(n, 4, seed=0)
    kernel = ridge._oof_predictions(X, Y, alphas, folds, standardize, route="kernel")
    refit = ridge._oof_predictions(X, Y, alphas, folds, standardize, route="refit")
    np.testing.assert_allclose(kernel, refit, rtol=1e-9, atol=1e-10)
    # one fold by hand: scales from all rows, centring by the training rows only
    test = folds[0]
    train = np.setdiff1d(np.arange(n), test)
    Z = zscore(X) if standardize else X
    W = direct_weights(Z[train], Y[train], 10.0)
    by_hand = (Z[test] - Z[train].mean(axis=0)) @ W + Y[train].mean(axis=0)
    np.testing.assert_allclose(kernel[1, test], by_hand, rtol=1e-9, atol=1e-10)


def test_kfold_indices_partition_and_seeding() -> None:
    folds = kfold_indices(23, 5, seed=7)
    assert sorted(f.size for f in folds) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(23))
    again = kfold_indices(23, 5, seed=np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    other = kfold_indices(23, 5, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other, strict=True))


def test_cv_r2_is_zero_for_the_training_mean_and_one_for_truth() -> None:
    rng = np.random.default_rng(8)
    Y = rng.standard_normal((30, 2))
    folds = kfold_indices(30, 3, seed=0)
    mean_pred = np.empty((1, 30, 2))
    for test in folds:
        mean_pred[0, test] = np.delete(Y, test, axis=0).mean(axis=0)
    np.testing.assert_allclose(ridge._cv_r2(mean_pred, Y, folds), 0.0, atol=1e-12)
    np.testing.assert_allclose(ridge._cv_r2(Y[np.newaxis], Y, folds), 1.0)


# --------------------------------------------------------------------------------------------------
# recovery and choices
# --------------------------------------------------------------------------------------------------

ALPHA_GRID = np.logspace(-2, 5, 29)


@pytest.mark.parametrize(("n", "p", "noise_var"), [(400, 50, 1.0), (200, 400, 0.25)], ids=["n>p snr1", "p>n snr4"])
def test_recovery_near_bayes_optimum_and_alpha_near_optimal(n: int, p: int, noise_var: float) -> None:
    X, Y, X_test, Y_test = linear_problem(10, n, p, k=20, noise_var=noise_var, n_test=3000)
    model, report = cross_validate_ridge({"x": X}, Y, ALPHA_GRID, seed=0, standardize=False)
    r2 = heldout_r2(Y_test, model.predict(X_test)).mean()
    optimum = bayes_optimal_r2(X, noise_var)
    assert optimum - 0.04 < r2 < optimum + 0.02, (r2, optimum)  # a 3x-off alpha costs ~0.04 at p > n
    best_alpha = noise_var * p  # noise variance / prior variance of a weight
    assert abs(np.log10(np.median(report["chosen_alphas"]) / best_alpha)) < 0.35, report["chosen_alphas"]
    assert np.median(report["cv_scores"]) == pytest.approx(optimum, abs=0.08)


def test_pure_noise_picks_large_alpha_and_noiseless_picks_small() -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((200, 30))
    noise = rng.standard_normal((200, 20))
    _, report = cross_validate_ridge({"x": X}, noise, ALPHA_GRID, seed=1)
    # the kernel's eigenvalues are about n = 200: every chosen alpha shrinks hard, most hit the top
    assert min(report["chosen_alphas"]) >= 100.0
    assert np.median(report["chosen_alphas"]) >= 1e3
    assert report["fraction_alpha_at_grid_edge"]["high"] >= 0.3
    assert abs(report["set_scores"]["x"]) < 0.01
    clean = X @ rng.standard_normal((30, 20))
    model, report = cross_validate_ridge({"x": X}, clean, ALPHA_GRID, seed=1)
    assert report["chosen_alphas"] == [ALPHA_GRID[0]] * 20
    assert min(report["cv_scores"]) > 0.9999
    np.testing.assert_allclose(model.predict(X), clean, atol=1e-3 * clean.std())


def test_chooses_the_feature_set_that_carries_the_signal() -> None:
    rng = np.random.default_rng(12)
    signal = rng.standard_normal((150, 80))
    Y = signal @ rng.standard_normal((80, 15)) / np.sqrt(80) + rng.standard_normal((150, 15))
    sets = {"distractor": rng.standard_normal((150, 300)), "signal": signal, "tiny": rng.standard_normal((150, 5))}
    for per_output in (True, False):
        model, report = cross_validate_ridge(sets, Y, np.logspace(-1, 4, 11), seed=3, per_output_alpha=per_output)
        assert model.feature_set == report["chosen_set"] == "signal"
        assert model.n_features == 80 and model.weights.shape == (80, 15)
        assert report["set_scores"]["signal"] > 0.15 > max(report["set_scores"]["distractor"], 0.0)
        assert set(report["cv_table"]) == set(sets) and len(report["cv_table"]["signal"]) == 11
        if not per_output:
            assert len(set(report["chosen_alphas"])) == 1
            assert np.all(model.alpha == model.alpha[0])
    np.testing.assert_allclose(model.alpha, report["chosen_alphas"])


def test_refit_uses_all_rows_with_chosen_alphas() -> None:
    rng = np.random.default_rng(13)
    X, Y = rng.standard_normal((60, 20)), rng.standard_normal((60, 3))
    model, report = cross_validate_ridge({"x": X}, Y, [0.5, 50.0, 5e3], n_folds=3, seed=0)
    expected = fit_ridge(X, Y, [1.0], standardize=True).weights(np.array(report["chosen_alphas"]))
    np.testing.assert_allclose(model.weights, expected, rtol=1e-10, atol=1e-12)


def test_cv_sees_only_the_rows_it_is_given() -> None:
    rng = np.random.default_rng(14)
    X_all, Y_all = rng.standard_normal((120, 40)), rng.standard_normal((120, 4))
    X_all[:, :3] += Y_all[:, :3]
    first_model, first = cross_validate_ridge({"x": X_all[:80]}, Y_all[:80], ALPHA_GRID, seed=5)
    X_all[80:] = 1e6 * rng.standard_normal((40, 40))  # rows not passed: anything at all
    Y_all[80:] = -3.0
    second_model, second = cross_validate_ridge({"x": X_all[:80].copy()}, Y_all[:80].copy(), ALPHA_GRID, seed=5)
    assert first == second
    np.testing.assert_array_equal(first_model.weights, second_model.weights)
    np.testing.assert_array_equal(first_model.feature_mean, second_model.feature_mean)


def test_speed_sized_problem_completes() -> None:
    rng = np.random.default_rng(15)
    n, p, k = 600, 20_000, 50
    X = rng.standard_normal((n, p), dtype=np.float32)
    Y = X[:, :200] @ rng.standard_normal((200, k)).astype(np.float32) / 14.0 + rng.standard_normal((n, k))
    model, report = cross_validate_ridge({"layer": X}, Y, np.logspace(1, 6, 8), n_folds=5, seed=0)
    assert model.weights.shape == (p, k)
    assert model.predict(X[:10]).shape == (10, k)
    assert np.isfinite(report["cv_scores"]).all()


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


def _xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(16)
    return rng.standard_normal((12, 5)), rng.standard_normal((12, 2))


def test_non_finite_values_are_named() -> None:
    X, Y = _xy()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"X \(feature set 'conv3'\) contains 1 NaN and 0 infinite.*\(2, 3\)"):
        cross_validate_ridge({"conv3": X}, Y, [1.0])
    with pytest.raises(ValueError, match=r"^X contains 1 NaN"):
        fit_ridge(X, Y, [1.0])
    X, Y = _xy()
    Y[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"^Y contains 0 NaN and 1 infinite"):
        cross_validate_ridge({"conv3": X}, Y, [1.0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, Y: (X[:10], Y), r"has 10 rows but Y has 12"),
        (lambda X, Y: (X, Y[:, 0]), r"Y must be 2-D"),
        (lambda X, Y: (X[:, 0], Y), r"must be 2-D"),
        (lambda X, Y: (X.astype(str), Y), r"must be numeric"),
    ],
)
def test_shape_mismatches_raise(change, message: str) -> None:
    X, Y = change(*_xy())
    with pytest.raises(ValueError, match=message):
        fit_ridge(X, Y, [1.0])
    with pytest.raises(ValueError, match=message):
        cross_validate_ridge({"a": X}, Y, [1.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_folds": 13}, r"n_folds \(13\) exceeds the number of rows \(12\)"),
        ({"n_folds": 1}, r"n_folds must be an integer >= 2"),
        ({"alphas": [1.0, 0.0]}, r"alphas must be finite and > 0"),
        ({"alphas": []}, r"alphas must be a non-empty"),
        ({"feature_sets": {}}, r"feature_sets must be a non-empty mapping"),
    ],
)
def test_bad_options_raise(kwargs: dict, message: str) -> None:
    X, Y = _xy()
    args = {"feature_sets": {"a": X}, "Y": Y, "alphas": [1.0]} | kwargs
    with pytest.raises(ValueError, match=message):
        cross_validate_ridge(**args)


def test_model_rejects_wrong_width_and_bad_alpha() -> None:
    X, Y = _xy()
    sol = fit_ridge(X, Y, [1.0])
    model = sol.model(1.0)
    assert isinstance(model, RidgeModel)
    with pytest.raises(ValueError, match=r"X must be shaped \(m, 5\)"):
        model.predict(X[:, :4])
    with pytest.raises(ValueError, match=r"alpha must be a scalar or shaped \(2,\)"):
        sol.weights(np.ones(3))
    with pytest.raises(ValueError, match=r"alpha must be finite and > 0"):
        sol.weights(-1.0)


def test_constant_output_scores_zero_and_ties_go_to_the_largest_alpha() -> None:
    rng = np.random.default_rng(17)
    X = rng.standard_normal((40, 6))
    Y = np.column_stack([X[:, 0] + 0.1 * rng.standard_normal(40), np.full(40, 3.0)])
    model, report = cross_validate_ridge({"x": X}, Y, [0.1, 1.0, 10.0], n_folds=4, seed=0)
    assert report["cv_scores"][1] == 0.0
    assert report["chosen_alphas"][1] == 10.0
    assert np.abs(model.weights[:, 1]).max() < 1e-12
    np.testing.assert_allclose(model.predict(X)[:, 1], 3.0)
