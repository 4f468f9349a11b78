"""Prediction-quality and reliability metrics shared by every stage of the pipeline.

Response arrays are single-trial spike counts shaped ``(neuron, image, repeat)`` with NaN where an
image had fewer repeats; a single neuron may be given as ``(image, repeat)``. Predictions are shaped
``(neuron, image)``, or ``(image,)`` for one neuron. Everything is vectorised over neurons.

The main score is the unbiased noise-corrected R^2 of Pospisil & Bair (2021), ``r2_er``, as used by
Cowley et al. (2023). ``r2_split_half`` is an independent cross-check (squared correlation divided by
the Spearman-Brown split-half reliability).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "median_ignoring_nan",
    "pearson_r",
    "r2_er",
    "r2_er_terms",
    "r2_split_half",
    "split_half_reliability",
]


SIGNIFICANCE = 0.05  # the closed loop's tests (a neuron's synthesised images beat the controls at p < 0.05)

# --------------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------------


def _check_responses(responses: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return responses as float ``(neuron, image, repeat)`` and whether the input was one neuron."""
    resp = np.asarray(responses, dtype=np.float64)
    if resp.ndim not in (2, 3):
        raise ValueError(
            "responses must be shaped (neuron, image, repeat) or (image, repeat); "
            f"got an array with {resp.ndim} dimension(s), shape {resp.shape}"
        )
    n_inf = int(np.count_nonzero(np.isinf(resp)))
    if n_inf:
        raise ValueError(f"responses contain {n_inf} infinite value(s); spike counts must be finite or NaN")
    n_neg = int(np.count_nonzero(resp < 0))  # NaN compares False
    if n_neg:
        raise ValueError(
            f"responses contain {n_neg} negative value(s) (minimum {np.nanmin(resp):g}); "
            "spike counts must be >= 0 (use NaN for missing repeats)"
        )
    single = resp.ndim == 2
    return (resp[np.newaxis] if single else resp), single


def _check_pair(prediction: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate a prediction against responses; return 2-D prediction, 3-D responses, single flag."""
    resp, single = _check_responses(responses)
    pred = np.asarray(prediction, dtype=np.float64)
    if single:
        if pred.ndim != 1:
            raise ValueError(
                "responses are for one neuron, shaped (image, repeat), so prediction must be shaped "
                f"(image,); got prediction shape {pred.shape}"
            )
        pred = pred[np.newaxis]
    elif pred.ndim != 2:
        raise ValueError(
            f"responses hold {resp.shape[0]} neuron(s), shaped (neuron, image, repeat) = {resp.shape}, "
            f"so prediction must be shaped (neuron, image); got prediction shape {pred.shape}"
        )
    if pred.shape[0] != resp.shape[0]:
        raise ValueError(
            f"neuron counts disagree: prediction has {pred.shape[0]} neuron(s), responses have {resp.shape[0]}"
        )
    if pred.shape[1] != resp.shape[1]:
        raise ValueError(
            f"image counts disagree: prediction has {pred.shape[1]} image(s), responses have {resp.shape[1]}"
        )
    has_data = np.any(~np.isnan(resp), axis=-1)
    bad = ~np.isfinite(pred) & has_data
    if np.any(bad):
        raise ValueError(
            f"prediction has {int(np.count_nonzero(bad))} non-finite value(s) on images that have responses"
        )
    return pred, resp, single


def _finish(values: np.ndarray, single: bool) -> np.ndarray:
    """Return a 0-d scalar for a single neuron, the per-neuron array otherwise."""
    return values[0][()] if single else values


# --------------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------------


def _masked_pearson(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson r along the last axis over entries where ``mask`` is True.

    NaN where fewer than two entries are used or either side is constant (exactly) over them.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    mask = np.ones(a.shape, dtype=bool) if mask is None else np.broadcast_to(mask, a.shape)
    count = mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ac = np.where(mask, a - (np.where(mask, a, 0.0).sum(axis=-1) / count)[..., np.newaxis], 0.0)
        bc = np.where(mask, b - (np.where(mask, b, 0.0).sum(axis=-1) / count)[..., np.newaxis], 0.0)
        r = (ac * bc).sum(axis=-1) / np.sqrt((ac * ac).sum(axis=-1) * (bc * bc).sum(axis=-1))
    constant = _is_constant(a, mask) | _is_constant(b, mask)
    return np.where(constant | (count < 2), np.nan, np.clip(r, -1.0, 1.0))


def _is_constant(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """True where ``values`` take a single value over the masked entries of the last axis."""
    hi = np.max(values, axis=-1, where=mask, initial=-np.inf)
    lo = np.min(values, axis=-1, where=mask, initial=np.inf)
    return hi == lo


def _response_stats(resp: np.ndarray) -> dict[str, np.ndarray]:
    """Per-neuron repeat statistics of validated ``(neuron, image, repeat)`` responses.

    Returns the public :func:`r2_er_terms` entries plus ``has_data`` (neuron, image) and
    ``repeat_mean`` (neuron, image; 0 where an image has no data).
    """
    valid = ~np.isnan(resp)
    k = valid.sum(axis=-1)  # repeats per (neuron, image)
    has_data = k > 0
    n_images = has_data.sum(axis=-1)
    filled = np.where(valid, resp, 0.0)
    repeat_mean = filled.sum(axis=-1) / np.maximum(k, 1)

    # across-repeat variance (ddof=1) per image, averaged over images with >= 2 repeats
    ss = np.where(valid, (filled - repeat_mean[..., np.newaxis]) ** 2, 0.0).sum(axis=-1)
    two_plus = k >= 2
    n_two_plus = two_plus.sum(axis=-1)
    var_img = np.where(two_plus, ss / np.maximum(k - 1, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        trial_variance = np.where(n_two_plus > 0, var_img.sum(axis=-1) / n_two_plus, np.nan)

    # median repeat count over images with data (images without data sort first, as k == 0)
    n_neurons, n_img_total = k.shape
    k_sorted = np.sort(k, axis=-1)
    first = n_img_total - n_images
    rows = np.arange(n_neurons)
    lo = np.clip(first + (n_images - 1) // 2, 0, max(n_img_total - 1, 0))
    hi = np.clip(first + n_images // 2, 0, max(n_img_total - 1, 0))
    if n_img_total:
        n_repeats = np.where(n_images > 0, 0.5 * (k_sorted[rows, lo] + k_sorted[rows, hi]), np.nan)
    else:
        n_repeats = np.full(n_neurons, np.nan)

    # variance over images of the repeat mean (ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = np.where(has_data, repeat_mean, 0.0).sum(axis=-1) / n_images
        dev = np.where(has_data, repeat_mean - grand[..., np.newaxis], 0.0)
        repeat_mean_variance = np.where(n_images >= 2, (dev * dev).sum(axis=-1) / (n_images - 1), np.nan)
        signal_variance = repeat_mean_variance - trial_variance / n_repeats
        explainable = np.where(repeat_mean_variance > 0, signal_variance / repeat_mean_variance, np.nan)

    return {
        "trial_variance": trial_variance,
        "n_repeats": n_repeats,
        "n_images": n_images,
        "repeat_mean_variance": repeat_mean_variance,
        "explainable_variance_fraction": explainable,
        "has_data": has_data,
        "repeat_mean": np.where(has_data, repeat_mean, 0.0),
    }


_PUBLIC_TERMS = (
    "trial_variance",
    "n_repeats",
    "n_images",
    "repeat_mean_variance",
    "explainable_variance_fraction",
)


def _split_half_r(resp: np.ndarray, n_splits: int, seed: int | None) -> np.ndarray:
    """Mean over random splits of the half-mean vs half-mean correlation, per neuron."""
    if int(n_splits) != n_splits or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer; got {n_splits!r}")
    rng = np.random.default_rng(seed)
    valid = ~np.isnan(resp)
    k = valid.sum(axis=-1)
    half = k // 2
    used = half >= 1  # images with >= 2 repeats
    pos = np.arange(resp.shape[-1])
    in_a = pos < half[..., np.newaxis]
    in_b = (pos >= half[..., np.newaxis]) & (pos < 2 * half[..., np.newaxis])
    filled = np.where(valid, resp, 0.0)
    denom = np.maximum(half, 1)

    total = np.zeros(resp.shape[0])
    n_finite = np.zeros(resp.shape[0], dtype=int)
    for _ in range(int(n_splits)):
        keys = rng.random(resp.shape)
        keys[~valid] = 2.0  # missing repeats sort last, available ones in random order
        shuffled = np.take_along_axis(filled, np.argsort(keys, axis=-1), axis=-1)
        mean_a = np.where(in_a, shuffled, 0.0).sum(axis=-1) / denom
        mean_b = np.where(in_b, shuffled, 0.0).sum(axis=-1) / denom
        r = _masked_pearson(mean_a, mean_b, used)
        ok = np.isfinite(r)
        total += np.where(ok, r, 0.0)
        n_finite += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_finite > 0, total / n_finite, np.nan)


def _spearman_brown(r: np.ndarray) -> np.ndarray:
    """Spearman-Brown prophecy for doubling the number of repeats: 2r / (1 + r)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r > -1.0, 2.0 * r / (1.0 + r), np.nan)


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def pearson_r(prediction: np.ndarray, target: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis``, broadcasting over the other dimensions.

    NaN where either side has zero variance (is constant) or contains NaN.
    """
    a, b = np.broadcast_arrays(np.asarray(prediction, dtype=np.float64), np.asarray(target, dtype=np.float64))
    r = _masked_pearson(np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1))
    return r[()]


def r2_er_terms(responses: np.ndarray) -> dict[str, np.ndarray]:
    """Response-only terms of the Pospisil & Bair (2021) r2_ER denominator, per neuron.

    Keys: ``trial_variance`` (sigma2: mean over images with >= 2 repeats of the across-repeat variance,
    ddof=1), ``n_repeats`` (median non-NaN repeats over images with data), ``n_images`` (m, images
    with data), ``repeat_mean_variance`` (variance over images of the repeat mean, ddof=1) and
    ``explainable_variance_fraction`` = (repeat_mean_variance - trial_variance / n_repeats) /
    repeat_mean_variance, the share of repeat-mean variance that is signal (the ceiling of plain r^2).
    """
    resp, single = _check_responses(responses)
    stats = _response_stats(resp)
    return {key: _finish(stats[key], single) for key in _PUBLIC_TERMS}


def r2_er(prediction: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Unbiased noise-corrected R^2 (r2_ER) of Pospisil & Bair (2021), per neuron.

    With x the prediction and y the repeat-mean response, both centred over the m images with data,
    sigma2 and n as in :func:`r2_er_terms`::

        r2_ER = [(sum xy)^2 - (sigma2/n) sum x^2] / [sum x^2 sum y^2 - (sigma2/n) (m-1) sum x^2]

    Images whose responses are all NaN are dropped (from the prediction too). NaN where the prediction
    is constant over the images with data or fewer than two images have data. Not clipped: noise can
    push it above 1 or below 0. With very unequal repeat counts, the median n is an approximation.
    Returns a scalar for one neuron given as ``(image,)`` / ``(image, repeat)``.
    """
    pred, resp, single = _check_pair(prediction, responses)
    stats = _response_stats(resp)
    has_data, m = stats["has_data"], stats["n_images"]
    with np.errstate(invalid="ignore", divide="ignore"):
        x_mean = np.where(has_data, pred, 0.0).sum(axis=-1) / m
        x = np.where(has_data, pred - x_mean[..., np.newaxis], 0.0)
        y = np.where(has_data, stats["repeat_mean"] - (stats["repeat_mean"].sum(axis=-1) / m)[..., None], 0.0)
        sxx = (x * x).sum(axis=-1)
        sxy = (x * y).sum(axis=-1)
        noise = stats["trial_variance"] / stats["n_repeats"]
        # sum y^2 == (m - 1) * repeat_mean_variance, so the denominator factors through the shared term
        numerator = sxy**2 - noise * sxx
        denominator = sxx * (m - 1) * (stats["repeat_mean_variance"] - noise)
        value = numerator / denominator
    bad = _is_constant(pred, has_data) | (m < 2) | (denominator == 0)
    return _finish(np.where(bad, np.nan, value), single)


def split_half_reliability(responses: np.ndarray, n_splits: int = 100, seed: int | None = 0) -> dict[str, np.ndarray]:
    """Split-half reliability of each neuron's repeat-mean response.

    For each of ``n_splits`` random splits, every image's available repeats are permuted
    independently; the first floor(k/2) go to half A and the next floor(k/2) to half B (images with
    fewer than 2 repeats are excluded). The two half-means are correlated across images. Returns
    ``split_half_r`` (the raw half-half r averaged over splits) and ``spearman_brown`` (the
    Spearman-Brown correction 2r/(1+r) applied to that mean r, i.e. the mean is corrected, not the
    corrected values averaged). Seeded by ``seed`` through ``np.random.default_rng``.
    """
    resp, single = _check_responses(responses)
    r = _split_half_r(resp, n_splits, seed)
    return {"split_half_r": _finish(r, single), "spearman_brown": _finish(_spearman_brown(r), single)}


def r2_split_half(
    prediction: np.ndarray, responses: np.ndarray, n_splits: int = 100, seed: int | None = 0
) -> np.ndarray:
    """Cross-check of r2_ER: squared Pearson r of prediction with the repeat mean / split-half reliability.

    The correlation uses the images with data; the reliability is the Spearman-Brown value of
    :func:`split_half_reliability` with the same ``n_splits`` and ``seed``.
    """
    pred, resp, single = _check_pair(prediction, responses)
    stats = _response_stats(resp)
    r = _masked_pearson(pred, stats["repeat_mean"], stats["has_data"])
    reliability = _spearman_brown(_split_half_r(resp, n_splits, seed))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _finish(r**2 / reliability, single)


def median_ignoring_nan(values: np.ndarray) -> float:
    """Median of all non-NaN entries (flattened); NaN if there are none."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    return float(np.median(arr)) if arr.size else float("nan")


def prediction_accuracy(prediction: np.ndarray, responses: np.ndarray, single_trial: bool) -> dict[str, np.ndarray]:
    """Per neuron: Pearson r with the repeat mean, and r2_ER where single trials exist (else NaN).

    prediction (neuron, image); responses (neuron, image, repeat), repeat means when not single_trial.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        repeat_mean = np.nanmean(responses, axis=2)
    r = pearson_r(prediction, repeat_mean)
    r2 = r2_er(prediction, responses) if single_trial else np.full(r.shape, np.nan)
    return {"r": np.asarray(r), "r2_er": np.asarray(r2)}
