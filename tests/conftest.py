"""Shared fixtures: the tiny configuration, the published data (when present), small recordings."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from filelock import FileLock

from compactcortex.recording import Recording, concatenate_spike_trains

REPOSITORY = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPOSITORY / "tests" / "config" / "tiny.yaml"
COWLEY_DIR = REPOSITORY.parent / "shared" / "data" / "cowley2023"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPOSITORY / "Snakefile")]


TINY_RUN = "tiny_local_run"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the tests in one process per core (pytest-xdist): one torch thread each, or they fight
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test on the tiny run goes first and the others last: under pytest-xdist one worker makes the run
    while the others take the tests that do not need it, and the tests that read it end the session on every
    worker. (Order only: every test stands on its own.)"""
    on_tiny_run = [item for item in items if TINY_RUN in getattr(item, "fixturenames", ())]
    if on_tiny_run:
        others = [item for item in items if TINY_RUN not in getattr(item, "fixturenames", ())]
        items[:] = [on_tiny_run[0], *others, *on_tiny_run[1:]]


def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder that every pytest-xdist worker of the session sees (each has its own below
    it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[], object]) -> None:
    """Run ``make()`` once in the session: by the first pytest-xdist worker that needs it (the others wait for it)."""
    root = shared_tmp(tmp_path_factory)
    done = root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            make()
            done.touch()


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
    """One complete local run of the tiny configuration, shared by the end-to-end, rerun, report, API and SLURM
    tests (and by every pytest-xdist worker). Tests write into it only through ``planned_jobs`` (a dry run with a
    config file of its own) and the report's fixture (made once)."""

    workdir = shared_tmp(tmp_path_factory) / TINY_RUN

    def run() -> None:
        shutil.rmtree(workdir, ignore_errors=True)  # what a failed attempt left
        workdir.mkdir()
        profile = str(REPOSITORY / "profiles" / "default")
        run_snakemake(workdir, "--configfile", str(TINY_CONFIG), "--workflow-profile", profile)

    once(tmp_path_factory, TINY_RUN, run)
    return workdir


def job_counts(output: str) -> dict[str, int]:
    """rule -> jobs, from a dry run's job table (without the total)."""
    rows = [line.split() for line in output.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def planned_jobs(workdir: Path, config: dict, snakefile: Path | None = None) -> dict[str, int]:
    """The jobs a dry run in ``workdir`` plans with ``config``. The config is written to a file of its own (named
    by its text and the Snakefile), so dry runs in one folder can run at once."""
    text = yaml.safe_dump(config)
    name = hashlib.sha256(f"{text}{snakefile}".encode()).hexdigest()[:12]
    path = workdir / f"changed_{name}.yaml"
    path.write_text(text)
    args = ("--snakefile", str(snakefile)) if snakefile else ()
    return job_counts(run_snakemake(workdir, *args, "--configfile", str(path), "--dry-run", "--quiet", "rules").stdout)


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
