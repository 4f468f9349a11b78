"""Tests of the virtual lab's V4 neurons: realistic, selective, diverse, nonlinear, reloadable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from compactcortex import stimuli
from compactcortex.lab import front_end, neuron_kinds, neurons, sampling

SIZE = 64


@pytest.fixture(scope="module")
def population() -> neurons.VirtualNeurons:
    """24 neurons of the default mix, calibrated on the default (self-drawn) calibration set."""
    return sampling.sample_population(np.random.default_rng(0), 24, SIZE)


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    return stimuli.natural_crops(np.random.default_rng(100), 500, SIZE)


@pytest.fixture(scope="module")
def natural_rates(population: neurons.VirtualNeurons, natural: np.ndarray) -> np.ndarray:
    return population.rates(natural)


@pytest.fixture(scope="module")
def small() -> neurons.VirtualNeurons:
    """A quickly calibrated population for API tests."""
    rng = np.random.default_rng(5)
    calibration, _ = stimuli.make_image_set(rng, {"natural": 30, "dots": 10}, 48)
    return sampling.sample_population(rng, 6, 48, calibration_images=calibration)


def test_population_mix(population: neurons.VirtualNeurons) -> None:
    assert len(population) == 24 and population.image_size == SIZE
    counts = {kind: int((population.kind == kind).sum()) for kind in neuron_kinds.KINDS}
    assert counts == {"curvature": 7, "texture": 6, "colour": 5, "dot": 6}
    few = sampling.sample_population(np.random.default_rng(1), 4, 48, calibration_images=_calibration(48))
    assert sorted(few.kind) == sorted(neuron_kinds.KINDS)


def test_rates_are_finite_and_in_a_realistic_range(natural_rates: np.ndarray) -> None:
    assert natural_rates.shape == (24, 500) and natural_rates.dtype == np.float64
    assert np.all(np.isfinite(natural_rates)) and natural_rates.min() >= 0
    baseline = np.percentile(natural_rates, 5, axis=1)
    peak = np.percentile(natural_rates, 99, axis=1)
    assert 1.0 <= np.median(baseline) <= 8.5
    assert 15.0 <= np.median(peak) <= 70.0
    assert np.all(peak > baseline + 3.0)  # every neuron is driven by some natural images
    assert natural_rates.max() < 200.0


def test_dot_neurons_prefer_dots(population: neurons.VirtualNeurons, natural_rates: np.ndarray) -> None:
    dots, _ = stimuli.dot_images(np.random.default_rng(101), 200, SIZE)
    ratio = population.rates(dots).mean(axis=1) / natural_rates.mean(axis=1)
    dot, other = ratio[population.kind == "dot"], ratio[np.isin(population.kind, ["curvature", "colour"])]
    assert np.mean(dot > 1.3) >= 0.8
    assert np.median(dot) > 1.5
    assert np.median(other) < 1.1
    assert np.median(dot) > np.max(other)


def test_dot_neurons_count_dots(population: neurons.VirtualNeurons) -> None:
    """On the systematic battery, more dots in the RF drive a dot neuron harder (the paper's Fig. 4)."""
    battery, params = stimuli.dot_battery(SIZE)
    rows = np.isin(params["factor"], ["reference", "number"])
    rates = population.subset(np.flatnonzero(population.kind == "dot")).rates(battery[rows])
    rho = [stats.spearmanr(params["n_dots"][rows], neuron).statistic for neuron in rates]
    assert np.median(rho) > 0.8


def test_curvature_neurons_prefer_their_curve_to_its_rotation(population: neurons.VirtualNeurons) -> None:
    index = np.flatnonzero(population.kind == "curvature")
    curves = np.stack([_draw_preferred_curve(population, i, rotate=False) for i in index])
    rotated = np.stack([_draw_preferred_curve(population, i, rotate=True) for i in index])
    chosen = population.subset(index)
    own = np.diag(chosen.rates(curves))
    turned = np.diag(chosen.rates(rotated))
    assert np.all(own > turned)
    assert np.median(own / turned) > 2.5


def test_population_is_diverse(natural_rates: np.ndarray) -> None:
    correlation = np.corrcoef(natural_rates)
    off_diagonal = np.abs(correlation[np.triu_indices(len(correlation), 1)])
    assert np.median(off_diagonal) < 0.6


def test_rates_are_not_linear_in_pixels(natural: np.ndarray, natural_rates: np.ndarray) -> None:
    """Ridge regression from raw pixels (best penalty chosen on the test half: optimistic) fails."""
    pixels = natural.reshape(len(natural), -1).astype(float) / 255.0
    train, test = slice(0, 250), slice(250, 500)
    pixels -= pixels[train].mean(axis=0)
    gram, cross = pixels[train] @ pixels[train].T, pixels[test] @ pixels[train].T
    r2 = []
    for rates in natural_rates:
        target = rates[train] - rates[train].mean()
        best = 0.0
        for penalty in (1.0, 10.0, 100.0, 1000.0):
            prediction = cross @ np.linalg.solve(gram + penalty * np.eye(len(target)), target)
            best = max(best, np.corrcoef(prediction, rates[test])[0, 1] ** 2)
        r2.append(best)
    assert np.median(r2) < 0.5


def test_same_seed_same_neurons() -> None:
    calibration = _calibration(48)
    first = sampling.sample_population(np.random.default_rng(9), 5, 48, calibration_images=calibration)
    second = sampling.sample_population(np.random.default_rng(9), 5, 48, calibration_images=calibration)
    other = sampling.sample_population(np.random.default_rng(10), 5, 48, calibration_images=calibration)
    images = calibration[:12]
    assert np.array_equal(first.rates(images), second.rates(images))
    assert not np.allclose(first.rates(images), other.rates(images))


def test_save_and_load_give_identical_rates(small: neurons.VirtualNeurons, tmp_path: Path) -> None:
    images = stimuli.make_image_set(np.random.default_rng(11), {"natural": 20, "dots": 10}, 48)[0]
    path = tmp_path / "neurons.npz"
    small.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["neurons.npz"]
    loaded = neurons.VirtualNeurons.load(path)
    assert np.array_equal(loaded.kind, small.kind) and loaded.image_size == small.image_size
    assert np.array_equal(loaded.rates(images), small.rates(images))
    part = small.subset([4, 1])
    assert list(part.kind) == [small.kind[4], small.kind[1]]
    assert np.allclose(part.rates(images), small.rates(images)[[4, 1]], atol=1e-3)


def test_bad_files_raise_value_errors_naming_the_path(small: neurons.VirtualNeurons, tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    small.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, something=np.arange(3))
    array = tmp_path / "array.npz"
    with open(array, "wb") as handle:
        np.save(handle, np.arange(3))
    bad_values = tmp_path / "bad_values.npz"
    with np.load(good) as data:
        contents = dict(data)
    contents["param_rf_sigma"] = -contents["param_rf_sigma"]
    np.savez(bad_values, **contents)
    for path in (truncated, garbage, wrong, array, bad_values, tmp_path / "missing.npz"):
        with pytest.raises(ValueError, match=path.name):
            neurons.VirtualNeurons.load(path)


def test_bad_images_and_arguments_raise(small: neurons.VirtualNeurons) -> None:
    with pytest.raises(ValueError, match="48 px"):
        small.rates(np.zeros((2, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        small.rates(np.zeros((2, 48, 48, 3)))
    with pytest.raises(ValueError, match="shaped"):
        small.rates(np.zeros((48, 48, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="batch_size"):
        small.rates(np.zeros((2, 48, 48, 3), dtype=np.uint8), batch_size=0)
    assert small.rates(np.zeros((0, 48, 48, 3), dtype=np.uint8)).shape == (6, 0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'grid'"):
        sampling.sample_population(rng, 4, 48, kind_fractions={"grid": 1.0})
    with pytest.raises(ValueError, match="n_neurons"):
        sampling.sample_population(rng, 0, 48)
    with pytest.raises(ValueError, match="64 px"):
        sampling.sample_population(rng, 4, 48, calibration_images=_calibration(64))


def _calibration(size: int) -> np.ndarray:
    return stimuli.make_image_set(np.random.default_rng(3), {"natural": 30, "dots": 10, "shapes": 8}, size)[0]


def _draw_preferred_curve(population: neurons.VirtualNeurons, i: int, rotate: bool) -> np.ndarray:
    """White curve made of short segments along each subunit's preferred orientation, centred on the
    subunits (so they join into the neuron's arc), optionally rotated by 90 degrees about the RF centre."""
    used = int(population.n_sub[i])
    centres = np.stack([population.sub_dx[i, :used], population.sub_dy[i, :used]], axis=1)
    half = 0.5 * np.linalg.norm(centres[1] - centres[0])
    theta = population.sub_ori[i, :used]
    tangents = half * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    segments = np.stack([centres - tangents, centres + tangents], axis=1)  # (subunit, end, xy)
    if rotate:
        segments = segments @ np.array([[0.0, 1.0], [-1.0, 0.0]])
    segments = (segments + [population.rf_x[i], population.rf_y[i]]) * SIZE - 0.5  # pixels
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    distance = np.full((SIZE, SIZE), np.inf)
    for (x0, y0), (x1, y1) in segments:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        distance = np.minimum(distance, np.hypot(x - x0 - t * dx, y - y0 - t * dy))
    width = max(1.0, 0.25 * SIZE / front_end.GABOR_FREQUENCIES[population.scale[i]])
    alpha = np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)
    return np.repeat(np.rint(128 + 127 * alpha)[..., None], 3, axis=2).astype(np.uint8)
