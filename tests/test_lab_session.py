"""A simulated session: NWB + ground truth; preprocessing recovers the true neurons within the noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from compactcortex import metrics
from compactcortex.config import load_config
from compactcortex.io.nwb import read_recording_nwb
from compactcortex.jobs.lab import simulate_session
from compactcortex.jobs.preprocess import preprocess_session
from compactcortex.lab.session import load_true_neurons
from tests.conftest import PREPROCESS_PARAMS, TINY_CONFIG

DESIGN = {"n_neurons": 8, "repeats": 8, "images": {"natural": 60, "gaudy": 10, "dots": 20, "shapes": 10}}


def _simulate(folder: Path, session: str = "t01", seed: int = 7, **spiking: float) -> dict[str, Path]:
    lab = {key: value for key, value in load_config(TINY_CONFIG)["virtual_lab"].items() if key != "roles"}
    lab["spiking"] = {**lab["spiking"], **spiking}
    paths = {
        "nwb_path": folder / f"{session}.nwb",
        "truth_path": folder / f"{session}_truth.nc",
        "neurons_path": folder / f"{session}_neurons.npz",
    }
    simulate_session(session=session, design=DESIGN, lab=lab, seed=seed, **paths)
    return paths


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lab")
    paths = _simulate(folder)
    paths["dataset"] = folder / "t01.nc"
    preprocess_session(paths["nwb_path"], paths["dataset"], params=PREPROCESS_PARAMS, seed=7)
    return paths


def test_recording_looks_like_a_v4_session(simulated: dict[str, Path]) -> None:
    recording = read_recording_nwb(simulated["nwb_path"])
    assert recording.n_units == 8 and recording.images.shape == (100, 32, 32, 3)
    assert 0.85 * 800 < recording.n_trials < 800, "a few trials are aborted"
    assert np.any(np.diff(recording.trial_image) != 1), "images are shown in shuffled order"
    duration = recording.trial_offset[-1]
    mean_rates = np.diff(recording.unit_bounds) / duration
    assert np.all((mean_rates > 0.5) & (mean_rates < 60)), mean_rates


def _fano_factors(dataset_path: Path) -> np.ndarray:
    """Per neuron: mean over images of the across-repeat variance over the mean over images of the mean."""
    with xr.open_dataset(dataset_path) as dataset:
        counts = dataset["responses"].values.astype(np.float64)
    return np.nanmean(np.nanvar(counts, axis=2, ddof=1), axis=1) / np.nanmean(counts, axis=(1, 2))


def test_responses_have_realistic_rates_and_overdispersion(tmp_path: Path, simulated: dict[str, Path]) -> None:
    with xr.open_dataset(simulated["dataset"]) as dataset:
        counts = dataset["responses"].values
    rates = np.nanmean(counts, axis=2) / 0.1  # spikes/s in the 100 ms window
    assert 1.0 < np.median(rates) < 40.0 and np.max(rates) < 120.0
    assert len(np.unique(np.sum(np.isfinite(counts[0]), axis=1))) > 1, "images differ in repeats"
    poisson = _simulate(tmp_path, gain_cv=0.0, shared_gain_cv=0.0)
    preprocess_session(poisson["nwb_path"], tmp_path / "poisson.nc", params=PREPROCESS_PARAMS, seed=7)
    fano_gain, fano_poisson = _fano_factors(simulated["dataset"]), _fano_factors(tmp_path / "poisson.nc")
    assert abs(np.median(fano_poisson) - 1.0) < 0.1, fano_poisson
    assert np.median(fano_gain) > np.median(fano_poisson) + 0.1, (fano_gain, fano_poisson)


def test_true_rate_explains_the_explainable_variance(simulated: dict[str, Path]) -> None:
    """The noiseless rate is the perfect predictor: its r2_ER is ~1, while the noise ceiling is below 1."""
    with xr.open_dataset(simulated["dataset"]) as dataset, xr.open_dataset(simulated["truth_path"]) as truth:
        rate = truth["rate"].sel(image=dataset["image"]).values
        r2_er = metrics.r2_er(rate, dataset["responses"].values)
        reliability = dataset["spearman_brown_reliability"].values
    assert abs(np.median(r2_er) - 1.0) < 0.12, r2_er
    assert 0.3 < np.median(reliability) < 0.98, reliability


def test_true_neurons_reload_and_answer_new_images(simulated: dict[str, Path]) -> None:
    neurons = load_true_neurons(simulated["neurons_path"])
    recording = read_recording_nwb(simulated["nwb_path"])
    with xr.open_dataset(simulated["truth_path"]) as truth:
        np.testing.assert_array_equal(neurons.rates(recording.images), truth["rate"].values)
        assert set(truth["neuron_kind"].values) <= {"curvature", "texture", "colour", "dot"}


def test_simulation_is_seeded(tmp_path: Path, simulated: dict[str, Path]) -> None:
    again = _simulate(tmp_path / "again")
    first, second = read_recording_nwb(simulated["nwb_path"]), read_recording_nwb(again["nwb_path"])
    np.testing.assert_array_equal(first.spike_times, second.spike_times)
    np.testing.assert_array_equal(first.images, second.images)
    other = read_recording_nwb(_simulate(tmp_path / "other", session="t02")["nwb_path"])
    assert not np.array_equal(first.images, other.images), "each session has its own images"
    with xr.open_dataset(simulated["truth_path"]) as a, xr.open_dataset(tmp_path / "other" / "t02_truth.nc") as b:
        assert not np.allclose(a["spontaneous_rate"].values, b["spontaneous_rate"].values), "and its own neurons"
