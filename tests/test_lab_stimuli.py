"""Tests of the virtual lab's stimuli: formats, determinism, natural statistics, dot parameters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from compactcortex import stimuli

GENERATORS = {
    "natural": stimuli.natural_crops,
    "dead_leaves": stimuli.dead_leaves,
    "texture": stimuli.textures,
    "dots": lambda rng, n, size: stimuli.dot_images(rng, n, size)[0],
    "shapes": stimuli.bars_and_curves,
}


def spectral_slope(images: np.ndarray) -> float:
    """Slope of log radially averaged amplitude spectrum vs log frequency (2 to size/4 cycles/image)."""
    luminance = images.astype(float).mean(axis=-1)
    size = luminance.shape[-1]
    window = np.outer(np.hanning(size), np.hanning(size))
    luminance = (luminance - luminance.mean(axis=(1, 2), keepdims=True)) * window
    amplitude = np.abs(np.fft.fft2(luminance)).mean(axis=0)
    fy, fx = np.meshgrid(np.fft.fftfreq(size, 1 / size), np.fft.fftfreq(size, 1 / size), indexing="ij")
    radius = np.hypot(fy, fx)
    bins = np.arange(2, size // 4 + 1)
    radial = np.array([amplitude[np.abs(radius - b) < 0.5].mean() for b in bins])
    return float(np.polyfit(np.log(bins), np.log(radial), 1)[0])


def blob_count(image: np.ndarray) -> int:
    """Number of 4-connected regions that differ from the grey background."""
    mask = np.abs(image.astype(int) - stimuli.GREY).max(axis=-1) > 3
    return int(ndimage.label(mask)[1])


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("size", [32, 45])
def test_format_for_any_size(name: str, size: int) -> None:
    images = GENERATORS[name](np.random.default_rng(1), 4, size)
    assert images.shape == (4, size, size, 3)
    assert images.dtype == np.uint8
    assert all(image.std() > 1.0 for image in images)  # every image has some structure


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_images_other_seed_other_images(name: str) -> None:
    make = GENERATORS[name]
    first = make(np.random.default_rng(7), 3, 40)
    assert np.array_equal(first, make(np.random.default_rng(7), 3, 40))
    assert not np.array_equal(first, make(np.random.default_rng(8), 3, 40))


def test_bad_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="size"):
        stimuli.natural_crops(rng, 2, 31)
    with pytest.raises(ValueError, match="non-negative"):
        stimuli.dead_leaves(rng, -1, 64)
    with pytest.raises(ValueError, match="Generator"):
        stimuli.textures(np.random.RandomState(0), 2, 64)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shaped"):
        stimuli.gaudy(np.zeros((2, 8, 8), dtype=np.uint8))
    assert stimuli.natural_crops(rng, 0, 32).shape == (0, 32, 32, 3)


def test_gaudy_is_binary_around_each_channel_median() -> None:
    natural = stimuli.natural_crops(np.random.default_rng(2), 12, 64)
    loud = stimuli.gaudy(natural)
    assert loud.dtype == np.uint8 and loud.shape == natural.shape
    assert set(np.unique(loud)) <= {0, 255}
    high = (loud == 255).reshape(12, -1, 3).mean(axis=1)
    assert np.median(high) == pytest.approx(0.5, abs=0.05)  # median split: about half the pixels are on
    assert np.array_equal(loud, stimuli.gaudy(natural))


def test_natural_and_dead_leaves_have_one_over_f_spectra() -> None:
    rng = np.random.default_rng(3)
    natural = spectral_slope(stimuli.natural_crops(rng, 32, 64))
    leaves = spectral_slope(stimuli.dead_leaves(rng, 32, 64))
    noise = spectral_slope(rng.integers(0, 256, (32, 64, 64, 3), dtype=np.uint8))
    assert -2.5 < natural < -0.9
    assert -2.5 < leaves < -0.9
    assert abs(noise) < 0.3
    assert natural < noise - 0.7 and leaves < noise - 0.7


def test_dot_parameters_match_the_dots_drawn() -> None:
    images, params = stimuli.dot_images(np.random.default_rng(4), 60, 64)
    assert set(params) == set(stimuli.DOT_PARAMETERS)
    assert all(len(values) == 60 for values in params.values())
    n_dots = params["n_dots"]
    assert n_dots.min() >= 1 and n_dots.max() <= 12 and len(np.unique(n_dots)) >= 8
    assert [blob_count(image) for image in images] == list(n_dots)
    assert np.all((params["contrast"] > 0) & (params["contrast"] <= 1))
    assert np.all(params["dot_radius"] >= 1)
    single = n_dots == 1
    assert np.all(params["spacing"][single] == 0)
    assert np.all(params["spacing"][~single] > 2 * params["dot_radius"][~single])
    # More contrast, more deviation from grey at the dot centres.
    peak = np.abs(images.astype(int) - stimuli.GREY).max(axis=(1, 2, 3))
    assert np.corrcoef(peak, params["contrast"])[0, 1] > 0.8


def test_dot_battery_varies_one_factor_at_a_time() -> None:
    images, params = stimuli.dot_battery(64)
    assert 30 <= len(images) <= 100 and images.dtype == np.uint8
    again, _ = stimuli.dot_battery(64)
    assert np.array_equal(images, again)
    assert [blob_count(image) for image in images] == list(params["n_dots"])
    factor = params["factor"]
    reference = {key: params[key][factor == "reference"][0] for key in ("n_dots", "dot_radius", "contrast")}
    reference["spacing"] = params["spacing"][factor == "reference"][0]
    varied = {"number": "n_dots", "radius": "dot_radius", "spacing": "spacing", "contrast": "contrast"}
    for name, key in varied.items():
        rows = factor == name
        assert len(np.unique(params[key][rows])) == rows.sum() >= 4
        for other, value in reference.items():
            if other != key and not (name == "number" and other == "spacing"):
                assert np.allclose(params[other][rows], value), (name, other)
    numbers = params["n_dots"][(factor == "number") | (factor == "reference")]
    assert sorted(numbers) == list(range(1, 13))


def test_shapes_are_drawn_on_grey() -> None:
    images = stimuli.bars_and_curves(np.random.default_rng(5), 20, 64)
    drawn = np.abs(images.astype(int) - stimuli.GREY).max(axis=-1) > 10
    assert np.all(drawn.any(axis=(1, 2)))
    assert np.all(drawn.mean(axis=(1, 2)) < 0.25)
    assert np.all(images[:, 0, 0] == stimuli.GREY)


def test_make_image_set_counts_and_shuffles() -> None:
    counts = {"natural": 6, "dead_leaves": 3, "texture": 3, "gaudy": 4, "dots": 5, "shapes": 2}
    images, kinds = stimuli.make_image_set(np.random.default_rng(6), counts, 48)
    assert images.shape == (23, 48, 48, 3) and images.dtype == np.uint8
    assert {name: int((kinds == name).sum()) for name in counts} == counts
    assert list(kinds) != sorted(kinds)
    gaudy = images[kinds == "gaudy"]
    assert set(np.unique(gaudy)) <= {0, 255}
    reordered = dict(reversed(list(counts.items())))
    again, again_kinds = stimuli.make_image_set(np.random.default_rng(6), reordered, 48)
    assert np.array_equal(images, again) and np.array_equal(kinds, again_kinds)


def test_make_image_set_rejects_unknown_types_and_bad_counts() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'faces'.*natural"):
        stimuli.make_image_set(rng, {"natural": 2, "faces": 1}, 64)
    with pytest.raises(ValueError, match="non-negative"):
        stimuli.make_image_set(rng, {"natural": -2}, 64)
    images, kinds = stimuli.make_image_set(rng, {"natural": 0}, 64)
    assert images.shape == (0, 64, 64, 3) and kinds.shape == (0,)
