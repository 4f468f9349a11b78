"""Preprocessing NWB -> session dataset: counts land in the right (neuron, image, repeat) cell; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from compactcortex.errors import InputDataError
from compactcortex.io.nwb import write_recording_nwb
from compactcortex.io.session_dataset import (
    REQUIRED_VARIABLES,
    build_session_dataset,
    open_session_dataset,
    write_session_dataset,
)
from compactcortex.jobs.preprocess import ingest_cowley_session, preprocess_session
from compactcortex.preprocess import trial_responses
from compactcortex.recording import Recording
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
    preprocess_session(nwb, output, params=PREPROCESS_PARAMS, seed=1)
    with open_session_dataset(output) as dataset:
        for name, dims in REQUIRED_VARIABLES.items():
            assert dataset[name].dims == dims
        assert dataset["responses"].dtype == np.float32 and dataset["images"].dtype == np.uint8
        np.testing.assert_array_equal(dataset["images"].values, recording.images)
        assert list(dataset["image_type"].values[:3]) == ["natural", "gaudy", "dots"]
        assert (dataset["n_repeats"].values == 4).all()
        assert dataset.attrs["session"] == "t01" and dataset.attrs["window_ms"] == 100
        assert dataset.attrs["response_kind"] == "single_trial"
        assert dataset.attrs["area"] == "V4" and "area" not in dataset.coords, "the writer's units are in V4"
        assert (dataset.attrs["image_order"], dataset.attrs["image_matched_by"]) == ("order_of_images", "index")
        assert dataset.attrs["dropped_neurons_json"] == "[]" and dataset.attrs["n_overlapping_windows"] == 0
        sources = dataset.attrs["source_sha256"]
        assert "t01.nwb" in sources and len(dataset.attrs["config_sha256"]) == 64
        mean = dataset["responses"].mean("repeat")
        np.testing.assert_allclose(dataset["zscore_mean"], mean.mean("image"), rtol=1e-6)
        assert np.all(np.isfinite(dataset["spearman_brown_reliability"]))


def test_session_dataset_is_deterministic(tmp_path: Path, recording: Recording) -> None:
    nwb = tmp_path / "t01.nwb"
    write_recording_nwb(nwb, recording)
    first, second = tmp_path / "a" / "t01.nc", tmp_path / "b" / "t01.nc"
    preprocess_session(nwb, first, params=PREPROCESS_PARAMS, seed=1)
    preprocess_session(nwb, second, params=PREPROCESS_PARAMS, seed=1)
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
            lambda a: (
                a["responses"].__setitem__((2, slice(None), slice(None)), 3.0) or a.update(on_silent_neuron="error")
            ),
            r"silent neurons \(nothing to model\): c \(the same repeat-mean response to every image\)",
        ),
        (lambda a: a["responses"].__setitem__(slice(None), 0.0), "every neuron is silent"),
        (lambda a: a.update(responses=a["responses"][:, :1], images=a["images"][:1]), "needs at least 2 images"),
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
    with pytest.raises(InputDataError, match=r"t01\.nwb: silent neurons \(nothing to model\): t01_n000"):
        preprocess_session(nwb, output, params={**PREPROCESS_PARAMS, "on_silent_neuron": "error"}, seed=1)
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


# Unit of each variable (None: ids, labels and indices have none).
UNITS = {
    "responses": "count",
    "images": "1",
    "split_half_r": "1",
    "spearman_brown_reliability": "1",
    "trial_variance": "count2",
    "n_repeats_median": "count",
    "repeat_mean_variance": "count2",
    "explainable_variance_fraction": "1",
    "zscore_mean": "count",
    "zscore_std": "count",
    "reliable": None,
    "neuron": None,
    "image": None,
    "repeat": None,
    "channel": None,
    "image_type": None,
    "n_repeats": "count",
    "source_index": None,
}


def test_netcdf_metadata_survives_the_round_trip(tmp_path: Path, recording: Recording) -> None:
    nwb = tmp_path / "t01.nwb"
    write_recording_nwb(nwb, recording)
    output = tmp_path / "sessions" / "t01.nc"
    preprocess_session(nwb, output, params=PREPROCESS_PARAMS, seed=1)
    with xr.open_dataset(output) as dataset:
        assert set(dataset.variables) == set(UNITS)
        for name, units in UNITS.items():
            assert dataset[name].attrs["long_name"], name
            assert dataset[name].attrs.get("units") == units, name
        assert list(dataset["reliable"].attrs["flag_values"]) == [0, 1]
        assert dataset.attrs["Conventions"] == "CF-1.10"
        assert dataset.attrs["title"] == "Session t01 (M1, V4): responses of 5 neurons to 12 images"
        assert dataset.attrs["history"] == (
            "compactcortex.preprocess: spikes of each trial counted in [onset + 50 ms, onset + 150 ms) from t01.nwb"
        )
        texts = [str(value) for value in dataset.attrs.values()]
        texts += [str(value) for name in dataset.variables for value in dataset[name].attrs.values()]
        assert not [text for text in texts if str(tmp_path) in text], "no absolute path in the metadata"


def test_cf_metadata_must_describe_every_variable() -> None:
    from compactcortex.netcdf_metadata import VariableMetadata, with_cf_metadata

    dataset = xr.Dataset({"rate": ("neuron", [1.0])}, coords={"neuron": ["a"]})
    with pytest.raises(ValueError, match="no NetCDF metadata for: neuron"):
        with_cf_metadata(dataset, {"rate": VariableMetadata("firing rate", "s-1")}, title="t", history="h")
    described = with_cf_metadata(
        dataset,
        {
            "rate": VariableMetadata("firing rate", "s-1"),
            "neuron": VariableMetadata("neuron id"),
            "unused": VariableMetadata("x"),
        },
        title="t",
        history="h",
    )
    assert described["neuron"].attrs == {"long_name": "neuron id"} and described["rate"].attrs["units"] == "s-1"


def test_cowley_ingest_drops_silent_neurons_and_says_v4(tmp_path: Path) -> None:
    from tests.test_ingest_cowley import _fake_published_session

    _fake_published_session(tmp_path, "999")
    averaged_path = tmp_path / "responses_repeat_averaged" / "responses_999.npy"
    averaged = np.load(averaged_path)
    averaged[2] = 1.5  # the same response to every image
    np.save(averaged_path, averaged)
    output = tmp_path / "out" / "999.nc"
    ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX")
    with open_session_dataset(output) as dataset:
        assert list(dataset["neuron"].values) == ["999_n000", "999_n001", "999_n003"]
        assert json.loads(dataset.attrs["dropped_neurons_json"])[0]["neuron"] == "999_n002"
        assert dataset.attrs["area"] == "V4" and dataset.attrs["Conventions"] == "CF-1.10"
        assert dataset.attrs["history"].endswith("(images_999.zip, responses_999.npy)")
    with pytest.raises(InputDataError, match=r"responses_999\.npy: the config gives the session's area as 'V1'"):
        ingest_cowley_session(tmp_path, "999", output, params=PREPROCESS_PARAMS, seed=0, monkey="XX", area="V1")


def test_preprocess_settings_and_their_schema() -> None:
    from compactcortex.config import validate_config
    from compactcortex.errors import ConfigError
    from compactcortex.preprocess import preprocess_settings
    from tests.test_config import MINIMAL, SESSIONS

    section = validate_config(MINIMAL)["preprocess"]
    assert preprocess_settings(PREPROCESS_PARAMS) == {**section, **PREPROCESS_PARAMS}
    assert {key: section[key] for key in ("nwb_image_order", "trial_filter", "allow_overlapping_windows")} == {
        "nwb_image_order": "recorded",
        "trial_filter": None,
        "allow_overlapping_windows": False,
    }
    assert section["on_silent_neuron"] == "drop"
    areas = [{**SESSIONS[0], "area": "V4"}, *SESSIONS[1:]]
    trial_filter = {"column": "success", "keep": [True]}
    assert validate_config({**MINIMAL, "sessions": areas, "preprocess": {"trial_filter": trial_filter}})
    with pytest.raises(ConfigError, match=r"preprocess/trial_filter.*'keep' is a required property"):
        validate_config({**MINIMAL, "preprocess": {"trial_filter": {"column": "success"}}})
    with pytest.raises(ConfigError, match=r"preprocess/nwb_image_order"):
        validate_config({**MINIMAL, "preprocess": {"nwb_image_order": "insertion"}})
