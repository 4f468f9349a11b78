"""Incremental reruns after a complete run of the tiny configuration: only what changed is planned, and a run
killed in the middle of a job finishes when restarted, without a corrupt output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

from compactcortex.io.manifest import MANIFEST, verify
from tests.conftest import REPOSITORY, SNAKEMAKE, TINY_CONFIG, planned_jobs, run_snakemake

pytestmark = pytest.mark.slow
PER_SESSION = ("simulate_session", "preprocess_session")


def test_adding_a_test_session_plans_only_its_jobs(tiny_local_run: Path) -> None:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["sessions"].append({"id": "t06", "role": "test"})
    jobs = planned_jobs(tiny_local_run, config)
    assert {rule: jobs.get(rule) for rule in PER_SESSION} == {"simulate_session": 1, "preprocess_session": 1}
    assert "train_member" not in jobs and "candidate_pool" not in jobs, jobs
    # the new session's own chain, once each (features: its images; the teacher streams its distillation pool)
    assert jobs["extract_features"] == 1 and jobs["map_session"] == 1 and jobs["teacher_labels"] == 1, jobs
    assert jobs["simulate_closed_loop"] == 1 and jobs["score_closed_loop"] == 1, jobs


def test_adding_a_training_session_retrains_the_ensemble(tiny_local_run: Path) -> None:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["sessions"].insert(0, {"id": "t00", "role": "train"})
    jobs = planned_jobs(tiny_local_run, config)
    assert {rule: jobs.get(rule) for rule in PER_SESSION} == {"simulate_session": 1, "preprocess_session": 1}
    assert jobs["train_member"] == 2 and jobs["extract_features"] == 1, jobs  # only t00's features are new
    assert jobs["map_session"] == 1 and jobs["teacher_labels"] == 1  # the test session's mapping uses the members


def copy_of_checkout(folder: Path) -> Path:
    """The workflow's files (not results, .venv or git) in ``folder``: a checkout a test may edit."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPOSITORY / name, folder / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "profiles", "envs"):
        shutil.copytree(REPOSITORY / name, folder / name, ignore=ignore)
    return folder / "Snakefile"


def test_editing_a_script_reruns_only_its_rule(tiny_local_run: Path, tmp_path: Path) -> None:
    snakefile = copy_of_checkout(tmp_path)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    assert planned_jobs(tiny_local_run, config, snakefile) == {}  # the same code elsewhere: nothing to do
    script = tmp_path / "workflow" / "scripts" / "figure_dots.py"
    script.write_text(script.read_text() + "# edited\n")
    assert planned_jobs(tiny_local_run, config, snakefile) == {"figure_dots": 1, "manifest": 1, "all": 1}


def test_a_killed_run_finishes_when_restarted(tiny_local_run: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    shutil.copytree(tiny_local_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks"))  # (tests share it)
    results = workdir / "results" / "tiny"
    manifest = tmp_path / MANIFEST
    shutil.copy2(results / MANIFEST, manifest)
    chunks = sorted((results / "synthesis" / "t05" / "chunks").glob("*.nc"))
    before = {chunk: chunk.stat().st_mtime_ns for chunk in chunks}

    def redone(chunk: Path) -> bool:
        return chunk.exists() and chunk.stat().st_mtime_ns != before[chunk]

    # redo the synthesis up to the session's stimulus set; kill the run once one synthesis job has finished
    target = "results/tiny/synthesis/t05/stimulus_set"  # (what follows it is rerun the same way: not again here)
    command = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", "--configfile", str(TINY_CONFIG)]
    process = subprocess.Popen(
        [*command, "--forcerun", "synthesize_images", "--", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(redone(chunk) for chunk in chunks):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert any(redone(chunk) for chunk in chunks), "no synthesis job finished in time"
    assert not all(redone(chunk) for chunk in chunks), "killed too late: every synthesis job had finished"
    for chunk in filter(Path.exists, chunks):  # atomic writes: what exists under its final name is complete
        xr.open_dataset(chunk).close()
    # restarting the same command (after releasing the killed run's lock) finishes the work
    run_snakemake(workdir, "--configfile", str(TINY_CONFIG), "--unlock")
    result = run_snakemake(workdir, "--configfile", str(TINY_CONFIG), "--forcerun", "synthesize_images",
                           "--rerun-incomplete", "--", target)  # fmt: skip
    assert "synthesize_images" in result.stdout + result.stderr and "collect_stimuli" in result.stdout + result.stderr
    rows = verify(manifest, results)
    assert all(row["result"] in ("identical", "within tolerance") for row in rows), [
        row for row in rows if row["result"] not in ("identical", "within tolerance")
    ]
