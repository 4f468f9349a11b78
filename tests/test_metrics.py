"""Tests for compactcortex.metrics on simulated responses with a known true signal."""

from __future__ import annotations

import numpy as np
import pytest

from compactcortex.metrics import (
    median_ignoring_nan,
    pearson_r,
    r2_er,
    r2_er_terms,
    r2_split_half,
    split_half_reliability,
)

N_NEURONS = 200
N_IMAGES = 400
OFFSET = 100.0  # keeps Gaussian "spike counts" far from zero (the metrics reject negative counts)


def noise_sd_for(reliability: float, n_repeats: int, signal_sd: float = 1.0) -> float:
    """Noise sd giving the repeat mean of n_repeats trials the requested reliability."""
    return float(np.sqrt(n_repeats * signal_sd**2 * (1.0 - reliability) / reliability))


def simulate(
    seed: int,
    n_repeats: int,
    noise_sd: float,
    signal: np.ndarray | None = None,
    n_neurons: int = N_NEURONS,
    n_images: int = N_IMAGES,
    ragged: float = 0.0,
    n_empty: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (true mean (neuron, image), trials (neuron, image, repeat) with NaN padding).

    A fraction ``ragged`` of images gets one repeat fewer or one more than ``n_repeats`` (half each);
    the first ``n_empty`` images have no data at all.
    """
    rng = np.random.default_rng(seed)
    if signal is None:
        signal = rng.standard_normal((n_neurons, n_images))
    mu = OFFSET + signal
    slots = n_repeats + 1
    trials = mu[..., None] + noise_sd * rng.standard_normal(mu.shape + (slots,))
    u = rng.random(mu.shape)
    k = np.full(mu.shape, n_repeats)
    k[u < ragged / 2] = n_repeats - 1
    k[(u >= ragged / 2) & (u < ragged)] = n_repeats + 1
    trials[np.arange(slots) >= k[..., None]] = np.nan
    trials[:, :n_empty] = np.nan
    return mu, trials


def plain_r2(prediction: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Squared Pearson r with the repeat mean over images that have data (the biased estimate)."""
    keep = ~np.all(np.isnan(trials), axis=(0, 2))
    return pearson_r(prediction[:, keep], np.nanmean(trials[:, keep], axis=-1)) ** 2


# --------------------------------------------------------------------------------------------------
# r2_ER: unbiased for a perfect predictor, plain r^2 is not
# --------------------------------------------------------------------------------------------------


def test_r2_er_perfect_predictor_unbiased_across_noise_while_plain_r2_is_biased():
    n = 4
    medians_er, medians_plain = [], []
    # (seed, reliability of the repeat mean, neurons, tolerance): more neurons where r2_ER is noisier
    for seed, reliability, n_neurons, tol in [(1, 0.9, 200, 0.03), (2, 0.6, 200, 0.03), (3, 0.35, 400, 0.04)]:
        mu, trials = simulate(seed, n, noise_sd_for(reliability, n), n_neurons=n_neurons, ragged=0.05, n_empty=8)
        er = r2_er(mu, trials)
        assert er.shape == (n_neurons,)
        assert abs(median_ignoring_nan(er) - 1.0) < tol
        medians_er.append(median_ignoring_nan(er))
        medians_plain.append(median_ignoring_nan(plain_r2(mu, trials)))
        # the plain r^2 of a perfect predictor estimates the reliability of the repeat mean
        assert abs(medians_plain[-1] - reliability) < 0.03
    assert medians_plain[-1] < 0.8
    assert medians_plain[0] > medians_plain[1] > medians_plain[2]
    assert max(abs(v - 1.0) for v in medians_er) < 0.04


def test_r2_er_is_not_clipped():
    n = 4
    mu, trials = simulate(4, n, noise_sd_for(0.35, n))
    er = r2_er(mu, trials)
    assert np.nanmax(er) > 1.0  # noise pushes individual neurons above 1; must not be clipped
    pred = np.random.default_rng(5).standard_normal(mu.shape)  # unrelated prediction
    er_null = r2_er(pred, trials)
    assert np.nanmin(er_null) < 0.0
    assert abs(median_ignoring_nan(er_null)) < 0.01


def test_r2_er_poisson_counts_perfect_predictor():
    rng = np.random.default_rng(6)
    rate = 4.0 * np.exp(0.5 * rng.standard_normal((N_NEURONS, N_IMAGES)))
    counts = rng.poisson(rate[..., None], size=rate.shape + (6,)).astype(float)
    counts[:, ::7, 5] = np.nan  # some images with one repeat fewer
    assert abs(median_ignoring_nan(r2_er(rate, counts)) - 1.0) < 0.03


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_r2_er_recovers_known_partial_fraction(fraction):
    rng = np.random.default_rng(7)
    a = np.sqrt(fraction) * rng.standard_normal((N_NEURONS, N_IMAGES))
    b = np.sqrt(1.0 - fraction) * rng.standard_normal((N_NEURONS, N_IMAGES))
    n = 4
    _, trials = simulate(8, n, noise_sd_for(0.6, n), signal=a + b, ragged=0.05, n_empty=4)
    er = median_ignoring_nan(r2_er(a, trials))
    assert abs(er - fraction) < 0.05
    # the plain r^2 is diluted by the noise: about fraction * reliability
    assert median_ignoring_nan(plain_r2(a, trials)) < fraction - 0.08


def test_r2_er_matches_formula_with_ragged_repeats():
    rng = np.random.default_rng(9)
    n_neurons, n_images, slots = 5, 30, 6
    resp = rng.poisson(5.0, (n_neurons, n_images, slots)).astype(float)
    k = rng.integers(0, slots + 1, (n_neurons, n_images))
    k[:, :3] = slots  # ensure enough data
    resp[np.arange(slots) >= k[..., None]] = np.nan
    pred = rng.standard_normal((n_neurons, n_images))
    got = r2_er(pred, resp)
    for i in range(n_neurons):
        keep = k[i] > 0
        x = pred[i, keep] - pred[i, keep].mean()
        ymean = np.nanmean(resp[i, keep], axis=-1)
        y = ymean - ymean.mean()
        two = k[i] >= 2
        sigma2 = np.mean(np.nanvar(resp[i, two], axis=-1, ddof=1))
        n = np.median(k[i, keep])
        m = keep.sum()
        ref = ((x @ y) ** 2 - sigma2 / n * (x @ x)) / ((x @ x) * (y @ y) - sigma2 / n * (m - 1) * (x @ x))
        np.testing.assert_allclose(got[i], ref, rtol=1e-10)


def test_r2_er_drops_empty_images_and_handles_single_neuron_and_constant():
    n = 4
    mu, trials = simulate(10, n, 1.0, n_neurons=6, n_images=50, n_empty=5)
    pred = mu.copy()
    pred[:, :5] = 1e6  # garbage on images without data: must be ignored
    np.testing.assert_allclose(r2_er(pred, trials), r2_er(mu[:, 5:], trials[:, 5:]), rtol=1e-12)
    single = r2_er(mu[0], trials[0])
    assert np.ndim(single) == 0
    assert single == pytest.approx(r2_er(mu, trials)[0], rel=1e-12)
    pred[2] = 3.0
    out = r2_er(pred, trials)
    assert np.isnan(out[2]) and np.all(np.isfinite(np.delete(out, 2)))
    assert np.isnan(r2_er(np.full(50, 0.1), trials[0]))


# --------------------------------------------------------------------------------------------------
# r2_er_terms
# --------------------------------------------------------------------------------------------------


def test_r2_er_terms_recover_known_variances():
    n, noise_sd = 6, 2.0
    _, trials = simulate(11, n, noise_sd, ragged=0.1, n_empty=10)
    terms = r2_er_terms(trials)
    assert set(terms) == {
        "trial_variance",
        "n_repeats",
        "n_images",
        "repeat_mean_variance",
        "explainable_variance_fraction",
    }
    assert np.all(terms["n_repeats"] == n)
    assert np.all(terms["n_images"] == N_IMAGES - 10)
    assert median_ignoring_nan(terms["trial_variance"]) == pytest.approx(noise_sd**2, rel=0.02)
    expected_fraction = 1.0 / (1.0 + noise_sd**2 / n)
    assert abs(median_ignoring_nan(terms["explainable_variance_fraction"]) - expected_fraction) < 0.03
    assert median_ignoring_nan(terms["repeat_mean_variance"]) == pytest.approx(1.0 + noise_sd**2 / n, rel=0.05)


def test_r2_er_terms_exact_small_example():
    resp = np.array([[1, 3, np.nan], [2, 2, 5], [4, np.nan, np.nan], [np.nan] * 3])
    terms = r2_er_terms(resp)
    assert all(np.ndim(v) == 0 for v in terms.values())
    assert terms["trial_variance"] == pytest.approx(2.5)  # mean of 2 and 3; single-repeat image excluded
    assert terms["n_repeats"] == 2  # median of 2, 3, 1
    assert terms["n_images"] == 3
    assert terms["repeat_mean_variance"] == pytest.approx(1.0)  # var of 2, 3, 4
    assert terms["explainable_variance_fraction"] == pytest.approx(-0.25)
    assert r2_er_terms(resp[:2])["n_repeats"] == 2.5


# --------------------------------------------------------------------------------------------------
# split-half reliability and r2_split_half
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reliability", [0.8, 0.4])
def test_split_half_matches_theoretical_reliability(reliability):
    n = 4
    _, trials = simulate(12, n, noise_sd_for(reliability, n), n_neurons=100, n_empty=5)
    out = split_half_reliability(trials, n_splits=20, seed=3)
    half = 1.0 / (1.0 + (1.0 - reliability) / reliability * 2)  # reliability of an n/2-repeat mean
    assert abs(median_ignoring_nan(out["split_half_r"]) - half) < 0.03
    assert abs(median_ignoring_nan(out["spearman_brown"]) - reliability) < 0.03
    r = out["split_half_r"]
    np.testing.assert_allclose(out["spearman_brown"], 2 * r / (1 + r))


def test_split_half_deterministic_and_excludes_single_repeat_images():
    _, trials = simulate(13, 3, 1.0, n_neurons=20, n_images=100, ragged=0.6, n_empty=3)
    assert np.any(np.sum(~np.isnan(trials), axis=-1) == 2)  # some images with 2 repeats ...
    first = split_half_reliability(trials, n_splits=10, seed=42)
    again = split_half_reliability(trials, n_splits=10, seed=42)
    other = split_half_reliability(trials, n_splits=10, seed=43)
    np.testing.assert_array_equal(first["spearman_brown"], again["spearman_brown"])
    assert not np.array_equal(first["split_half_r"], other["split_half_r"])
    assert np.all(np.isfinite(first["spearman_brown"]))
    trials[:, 10:20, 1:] = np.nan  # ... and some with a single repeat: excluded, result stays finite
    assert np.all(np.isfinite(split_half_reliability(trials, n_splits=5)["split_half_r"]))
    single = split_half_reliability(trials[0], n_splits=5)
    assert np.ndim(single["spearman_brown"]) == 0


def test_r2_split_half_agrees_with_r2_er_on_perfect_predictor():
    n = 4
    mu, trials = simulate(14, n, noise_sd_for(0.6, n), n_neurons=100, n_empty=5)
    sh = r2_split_half(mu, trials, n_splits=20)
    er = r2_er(mu, trials)
    assert abs(median_ignoring_nan(sh) - 1.0) < 0.03
    assert abs(median_ignoring_nan(er) - 1.0) < 0.03
    assert median_ignoring_nan(np.abs(sh - er)) < 0.05


# --------------------------------------------------------------------------------------------------
# pearson_r, median_ignoring_nan, validation
# --------------------------------------------------------------------------------------------------


def test_pearson_r_basics():
    x = np.random.default_rng(15).standard_normal((3, 50))
    np.testing.assert_allclose(pearson_r(x, 2 * x + 1), 1.0)
    np.testing.assert_allclose(pearson_r(x, -3 * x), -1.0)
    assert pearson_r(x[0], 2 * x[0] + 1) == pytest.approx(1.0)
    assert np.isnan(pearson_r(np.full(10, 2.5), np.arange(10.0)))
    assert np.isnan(pearson_r(np.arange(10.0), np.zeros(10)))
    np.testing.assert_allclose(pearson_r(x, x[0]), [np.corrcoef(row, x[0])[0, 1] for row in x])
    np.testing.assert_allclose(pearson_r(x.T, x[0][:, None], axis=0), pearson_r(x, x[0]))
    y = x.copy()
    y[1, 4] = np.nan
    r = pearson_r(x, y)
    assert np.isnan(r[1]) and np.allclose(r[[0, 2]], 1.0)


def test_median_ignoring_nan():
    assert median_ignoring_nan([1.0, np.nan, 3.0, 2.0]) == 2.0
    assert np.isnan(median_ignoring_nan([np.nan, np.nan]))
    assert np.isnan(median_ignoring_nan([]))
    assert isinstance(median_ignoring_nan(np.ones((2, 2))), float)


def test_bad_input_raises_value_error():
    resp = np.ones((3, 10, 4))
    resp[..., 0] = 2.0
    pred = np.arange(30.0).reshape(3, 10)
    with pytest.raises(ValueError, match="image counts disagree.*9.*10"):
        r2_er(pred[:, :9], resp)
    with pytest.raises(ValueError, match="neuron counts disagree.*2.*3"):
        r2_er(pred[:2], resp)
    with pytest.raises(ValueError, match="prediction must be shaped \\(neuron, image\\)"):
        r2_split_half(pred[0], resp)
    with pytest.raises(ValueError, match="prediction must be shaped \\(image,\\)"):
        r2_er(pred, resp[0])
    bad = resp.copy()
    bad[1, 2, 3] = -1.0
    with pytest.raises(ValueError, match="1 negative"):
        r2_er(pred, bad)
    with pytest.raises(ValueError, match="negative"):
        split_half_reliability(bad)
    bad[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        r2_er_terms(bad)
    with pytest.raises(ValueError, match="dimension"):
        r2_er_terms(np.ones(5))
    with pytest.raises(ValueError, match="non-finite"):
        r2_er(np.where(pred == 4.0, np.nan, pred), resp)
    with pytest.raises(ValueError, match="n_splits"):
        split_half_reliability(resp, n_splits=0)
