"""The pipeline on a real (one-node) SLURM cluster through a SLURM profile: every job goes through sbatch and the
results equal a local run's. Skips, saying why, where SLURM is not installed or the test is not root."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from compactcortex.io.manifest import MANIFEST, verify
from tests.conftest import REPOSITORY, TINY_CONFIG, run_snakemake
from tests.slurm_cluster import local_cluster, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.slurm]  # `make test-slurm` (about 8 minutes); .ci/run runs it
PROFILE = REPOSITORY / "tests" / "profiles" / "slurm-local"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with local_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def slurm_run(workdir: Path, env: dict[str, str], *args: str, config: Path = TINY_CONFIG, check: bool = True):
    profile = ("--profile", str(PROFILE), "--workflow-profile", str(REPOSITORY / "profiles" / "default"))
    return run_snakemake(workdir, "--configfile", str(config), *profile, *args, check=check, env=env, cores=False)


@pytest.fixture(scope="module")
def slurm_workdir(cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A complete run of the tiny configuration through the SLURM profile: (its folder, Snakemake's output)."""
    workdir = tmp_path_factory.mktemp("tiny_slurm")
    started = time.monotonic()
    result = slurm_run(workdir, cluster)
    print(f"the tiny pipeline through SLURM took {time.monotonic() - started:.0f} s")
    return workdir, result.stdout + result.stderr


def test_every_job_goes_through_sbatch(slurm_workdir: tuple[Path, str]) -> None:
    workdir, output = slurm_workdir
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    executed = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output)
    local_rules = [rule for rule in executed if rule == "all"]  # the target has no action: nothing to submit
    assert len(executed) > 40 and len(set(submitted)) == len(executed) - len(local_rules), output[-3000:]
    logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert sorted(log.stem for log in logs) == sorted(submitted)  # one SLURM log per job, named by its job id


def test_slurm_results_equal_the_local_run(slurm_workdir: tuple[Path, str], tiny_local_run: Path) -> None:
    """The SLURM run reproduces the local run's MANIFEST: identical bytes, or equal within the named tolerance."""
    rows = verify(tiny_local_run / "results" / "tiny" / MANIFEST, slurm_workdir[0] / "results" / "tiny")
    failed = [row for row in rows if row["result"] not in ("identical", "within tolerance")]
    assert not failed, failed
    # floating point may differ between a job run locally and under slurmstepd (thread pools); most bytes do not
    assert sum(row["result"] == "identical" for row in rows) > len(rows) / 2, rows


def test_gpu_rule_asks_slurm_for_a_gpu(
    cluster: dict[str, str], slurm_workdir: tuple[Path, str], tmp_path: Path
) -> None:
    """A rule on a cuda device requests a GPU in its sbatch line (read, not run: this cluster has no GPU)."""
    workdir = tmp_path / "run"  # a copy of the complete run: only the feature jobs, whose device changes, are submitted
    shutil.copytree(slurm_workdir[0], workdir, symlinks=True)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["features"]["device"] = "cuda"
    (tmp_path / "cuda.yaml").write_text(yaml.safe_dump(config))
    result = slurm_run(workdir, cluster, "--until", "extract_features", "--verbose", config=tmp_path / "cuda.yaml",
                       check=False)  # fmt: skip
    output = result.stdout + result.stderr
    calls = [line for line in output.splitlines() if "sbatch" in line and "extract_features" in line]
    assert calls, output[-3000:]
    assert all(re.search(r"--gpus[= ]1|--gres[= ]'?gpu:1", call) for call in calls), calls
    cpu_calls = [line for line in slurm_workdir[1].splitlines() if "sbatch" in line]
    assert not any("gpu" in call for call in cpu_calls), cpu_calls  # (the complete run's lines, if printed)
