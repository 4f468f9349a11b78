"""The plan of a configuration (``make plan``): job counts, GPU-hours, memory and disk per rule from the same
resource estimates the rules request, checked against common cluster limits; the paper's configuration plans."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from compactcortex.config import DEFAULT_CONFIG_PATH, load_config
from compactcortex.plan import format_plan, limits_exceeded, main, plan_rows
from compactcortex.resources import compression_resources
from tests.conftest import COWLEY_DIR, REPOSITORY, SNAKEMAKE

PAPER_CONFIG = REPOSITORY / "config" / "paper.yaml"


def test_the_default_plan_counts_its_jobs_and_fits() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    rows = {row.rule: row for row in plan_rows(config)}
    tests = sum(session["role"] == "test" for session in config["sessions"])
    n_neurons = config["virtual_lab"]["roles"]["test"]["n_neurons"]
    assert rows["train_member"].jobs == config["ensemble"]["members"]
    assert rows["compress_neurons (pool read by index)"].jobs == tests * -(
        -n_neurons // config["compact"]["neurons_per_job"]
    )
    runtime = compression_resources(config["compact"], config["virtual_lab"]["image_size"])["runtime"]
    assert rows["compress_neurons (pool read by index)"].hours == pytest.approx(runtime / 60)  # what the rule asks for
    assert all(not row.gpu for row in rows.values())  # the default runs on CPUs
    assert limits_exceeded(list(rows.values())) == []
    assert format_plan(list(rows.values())).endswith("fits the limits")


def test_the_paper_configuration_is_the_papers_scale() -> None:
    config = load_config(PAPER_CONFIG)
    assert config["ensemble"]["members"] == 25 and config["ensemble"]["width"] == 512
    compact = config["compact"]
    assert (compact["filters"], compact["image_size"], compact["batch_size"]) == (100, 112, 64)
    pool = sum(compact["pool"]["images"].values()) + compact["pool"]["augmented"]
    assert pool == 12_000_000 and compact["steps"] * compact["batch_size"] == pool  # one pass over the pool
    assert {config[section]["device"] for section in ("features", "ensemble", "compact", "synthesis")} == {"cuda"}
    assert compact["sessions"] is None  # every test session


@pytest.mark.skipif(not COWLEY_DIR.is_dir(), reason=f"the published data are not at {COWLEY_DIR}")
def test_the_paper_plan_fits_the_cluster_limits(capsys: pytest.CaptureFixture) -> None:
    """At most 24 h and 64 GB a job on one GPU, at most 100 GB of disk for the run: the pool is a recipe read by
    index, so only the teacher's labels reach the disk (12 million images x 173 neurons x 4 bytes, 8.3 GB)."""
    assert main([str(PAPER_CONFIG)]) == 0
    printed = capsys.readouterr().out
    assert "train_member" in printed and "compress_neurons" in printed and "GPU-h" in printed
    assert printed.rstrip().endswith("fits the limits"), printed
    rows = {row.rule: row for row in plan_rows(_with_data_path(load_config(PAPER_CONFIG)))}
    assert rows["train_member"].jobs == 25 and rows["train_member"].gpu
    compress = rows["compress_neurons (pool read by index)"]
    assert compress.hours <= 24 and compress.mem_gb <= 64 and compress.gpu
    labels = rows["teacher_labels (streamed)"].disk_gb
    assert 5 < labels < 12  # the test sessions' neurons (173 here, 219 in the paper) x 12M images x 4 bytes
    assert labels > 0.5 * sum(row.disk_gb for row in rows.values())  # the labels are most of the disk
    assert limits_exceeded(list(rows.values())) == []


@pytest.mark.skipif(not COWLEY_DIR.is_dir(), reason=f"the published data are not at {COWLEY_DIR}")
def test_the_paper_configuration_plans_in_seconds(tmp_path) -> None:  # noqa: ANN001
    start = time.perf_counter()
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(tmp_path), "--dry-run", "--quiet", "rules", "--configfile", str(PAPER_CONFIG)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "train_member" in result.stdout and seconds < 120, seconds


def _with_data_path(config: dict) -> dict:
    config["source"]["path"] = str(COWLEY_DIR)
    return config


def test_make_plan_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "compactcortex.plan", str(DEFAULT_CONFIG_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPOSITORY,
    )
    assert result.returncode == 0 and "fits the limits" in result.stdout, result.stderr
