"""Shared fixtures: the tiny configuration, the published data (when present), small recordings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from compactcortex.recording import Recording, concatenate_spike_trains

REPOSITORY = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPOSITORY / "tests" / "config" / "tiny.yaml"
COWLEY_DIR = REPOSITORY.parent / "shared" / "data" / "cowley2023"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPOSITORY / "Snakefile")]


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None, cores: bool = True
) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "--directory", str(workdir), *(["--cores", "2"] if cores else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="session")
def tiny_local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete local run of the tiny configuration (shared by the end-to-end and SLURM tests)."""
    workdir = tmp_path_factory.mktemp("tiny_local")
    run_snakemake(
        workdir, "--configfile", str(TINY_CONFIG), "--workflow-profile", str(REPOSITORY / "profiles" / "default")
    )
    return workdir


@pytest.fixture
def cowley_dir() -> Path:
    if not (COWLEY_DIR / "README.md").is_file():
        pytest.skip(f"the published Cowley et al. 2023 data are not at {COWLEY_DIR}")
    return COWLEY_DIR


def make_recording(
    rng: np.random.Generator, n_units: int = 5, n_images: int = 12, repeats: int = 4, image_size: int = 8
) -> Recording:
    """A small recording whose spike counts per trial are known: spikes placed inside each window."""
    trial_image = np.concatenate([rng.permutation(n_images) for _ in range(repeats)])
    onset = 1.0 + np.arange(trial_image.size) * 0.3
    counts = rng.poisson(3.0, size=(n_units, trial_image.size)) + (np.arange(n_images)[trial_image] % 3)
    trains = []
    for unit in range(n_units):
        times = np.repeat(onset + 0.05, counts[unit]) + rng.uniform(0.0, 0.1, counts[unit].sum())
        background = rng.uniform(0.0, onset[-1] + 1.0, 20)
        background = background[
            ~np.any((background[:, None] >= onset + 0.05) & (background[:, None] < onset + 0.15), axis=1)
        ]
        trains.append(np.sort(np.concatenate([times, background])))
    spike_times, unit_bounds = concatenate_spike_trains(trains)
    recording = Recording(
        session="t01",
        monkey="M1",
        unit_ids=np.array([f"t01_n{unit:03d}" for unit in range(n_units)]),
        spike_times=spike_times,
        unit_bounds=unit_bounds,
        trial_onset=onset,
        trial_offset=onset + 0.1,
        trial_image=trial_image,
        images=rng.integers(0, 256, (n_images, image_size, image_size, 3), dtype=np.uint8),
        image_ids=np.array([f"t01_img{index:05d}" for index in range(n_images)]),
        image_types=np.array(["natural", "gaudy", "dots"] * (n_images // 3) + ["natural"] * (n_images % 3)),
        area="V4",
    )
    recording.metadata["true_counts"] = counts  # type: ignore[assignment]
    return recording


@pytest.fixture
def recording() -> Recording:
    return make_recording(np.random.default_rng(7))


PREPROCESS_PARAMS = {
    "latency_ms": 50,
    "window_ms": 100,
    "reliability_splits": 20,
    "min_reliability": 0.3,
    "nwb_image_column": "image_index",
    "nwb_stimulus_template": "stimulus_images",
    "compression_level": 4,
}


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny convolutions run fastest on one thread (and do not fight other tests for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
