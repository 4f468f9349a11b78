"""Preprocessing NWB -> session dataset: counts land in the right (neuron, image, repeat) cell; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from compactcortex.errors import InputDataError
from compactcortex.nwb_io import write_recording_nwb
from compactcortex.preprocess import preprocess_nwb, trial_responses
from compactcortex.recording import Recording
from compactcortex.session_dataset import (
    REQUIRED_VARIABLES,
    build_session_dataset,
    open_session_dataset,
    write_session_dataset,
)
from tests.conftest import PREPROCESS_PARAMS


def test_counts_are_arranged_by_image_and_repeat_in_presentation_order(recording: Recording) -> None:
    responses, shown = trial_responses(recording, latency_ms=50, window_ms=100)
    true_counts = recording.metadata["true_counts"]
    np.testing.assert_array_equal(shown, np.arange(12))
    for image in (0, 5, 11):
        trials = np.flatnonzero(recording.trial_image == image)  # in onset order
        np.testing.assert_array_equal(responses[:, image, :], true_counts[:, trials])


def test_images_with_fewer_repeats_are_nan_padded(recording: Recording) -> None:
    dropped = np.flatnonzero(recording.trial_image == 2)[:2]
    keep = np.setdiff1d(np.arange(recording.n_trials), dropped)
    recording.trial_onset, recording.trial_offset = recording.trial_onset[keep], recording.trial_offset[keep]
    recording.trial_image = recording.trial_image[keep]
    responses, _ = trial_responses(recording, latency_ms=50, window_ms=100)
    assert np.isfinite(responses[:, 2, :2]).all() and np.isnan(responses[:, 2, 2:]).all()
    assert np.isfinite(responses[:, 3, :]).all()


def test_nwb_to_session_dataset(tmp_path: Path, recording: Recording) -> None:
    nwb = tmp_path / "t01.nwb"
    write_recording_nwb(nwb, recording)
    output = tmp_path / "sessions" / "t01.nc"
    preprocess_nwb(nwb, output, params=PREPROCESS_PARAMS, seed=1)
    with open_session_dataset(output) as dataset:
        for name, dims in REQUIRED_VARIABLES.items():
            assert dataset[name].dims == dims
        assert dataset["responses"].dtype == np.float32 and dataset["images"].dtype == np.uint8
        np.testing.assert_array_equal(dataset["images"].values, recording.images)
        assert list(dataset["image_type"].values[:3]) == ["natural", "gaudy", "dots"]
        assert (dataset["n_repeats"].values == 4).all()
        assert dataset.attrs["session"] == "t01" and dataset.attrs["window_ms"] == 100
        assert dataset.attrs["response_kind"] == "single_trial"
        sources = dataset.attrs["source_sha256"]
        assert "t01.nwb" in sources and len(dataset.attrs["config_sha256"]) == 64
        mean = dataset["responses"].mean("repeat")
        np.testing.assert_allclose(dataset["zscore_mean"], mean.mean("image"), rtol=1e-6)
        assert np.all(np.isfinite(dataset["spearman_brown_reliability"]))


def test_session_dataset_is_deterministic(tmp_path: Path, recording: Recording) -> None:
    nwb = tmp_path / "t01.nwb"
    write_recording_nwb(nwb, recording)
    first, second = tmp_path / "a" / "t01.nc", tmp_path / "b" / "t01.nc"
    preprocess_nwb(nwb, first, params=PREPROCESS_PARAMS, seed=1)
    preprocess_nwb(nwb, second, params=PREPROCESS_PARAMS, seed=1)
    xr.testing.assert_identical(xr.load_dataset(first), xr.load_dataset(second))


def _arrays(rng: np.random.Generator) -> dict:
    return {
        "source": "input.nc",
        "session": "s",
        "monkey": "M",
        "responses": rng.poisson(4.0, (3, 10, 4)).astype(float),
        "images": rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8),
        "neuron_ids": np.array(["a", "b", "c"]),
        "image_ids": np.array([f"i{k}" for k in range(10)]),
        "image_types": np.array(["natural"] * 10),
        "response_kind": "single_trial",
        "latency_ms": 50,
        "window_ms": 100,
        "reliability_splits": 10,
        "min_reliability": 0.3,
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(images=a["images"][:9]), "responses cover 10 images but there are 9 images"),
        (lambda a: a["responses"].__setitem__((0, 0, 0), -1.0), "negative spike counts"),
        (lambda a: a["responses"].__setitem__((1, 4, slice(None)), np.nan), "neuron b has no response"),
        (lambda a: a["responses"].__setitem__((0, 0, 0), np.inf), "infinite"),
        (
            lambda a: a["responses"].__setitem__((2, slice(None), slice(None)), 3.0),
            r"zero variance across images \(nothing to model\): c",
        ),
        (lambda a: a["image_ids"].__setitem__(3, "i0"), "duplicate image ids: i0"),
        (lambda a: a["neuron_ids"].__setitem__(2, "a"), "duplicate neuron ids: a"),
        (lambda a: a.update(neuron_ids=np.array(["a", "b"])), "3 neurons in the responses but 2 neuron ids"),
        (lambda a: a.update(images=a["images"].astype(float)), "images must be uint8"),
    ],
)
def test_bad_arrays_get_one_clear_error(change, message: str) -> None:  # noqa: ANN001
    arrays = _arrays(np.random.default_rng(0))
    change(arrays)
    with pytest.raises(InputDataError, match=message) as error:
        build_session_dataset(**arrays)
    assert str(error.value).startswith("input.nc: ")


def test_failed_preprocessing_leaves_no_output(tmp_path: Path, recording: Recording) -> None:
    recording.spike_times = recording.spike_times.copy()
    first_unit = slice(recording.unit_bounds[0], recording.unit_bounds[1])
    recording.spike_times[first_unit] = -1.0  # the unit never fires in a window: zero variance
    nwb = tmp_path / "t01.nwb"
    write_recording_nwb(nwb, recording)
    output = tmp_path / "sessions" / "t01.nc"
    with pytest.raises(InputDataError, match=r"t01\.nwb: neurons with zero variance across images"):
        preprocess_nwb(nwb, output, params=PREPROCESS_PARAMS, seed=1)
    assert not output.exists()
    assert not list(tmp_path.rglob("*.partial*")), "no temporary file is left behind"


def test_corrupt_session_dataset_is_a_clear_error(tmp_path: Path) -> None:
    arrays = _arrays(np.random.default_rng(0))
    dataset = build_session_dataset(**arrays, attrs={"config_sha256": "x" * 64, "code_version": "test"})
    path = tmp_path / "s.nc"
    write_session_dataset(dataset, path)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputDataError, match=r"truncated\.nc: cannot be read"):
        open_session_dataset(truncated)
    dataset.drop_vars("images").to_netcdf(tmp_path / "partial.nc")
    with pytest.raises(InputDataError, match="variable 'images' is missing"):
        open_session_dataset(tmp_path / "partial.nc")
