"""A real one-node SLURM cluster for the tests (../shared/SLURM_LOCAL.md): munge, slurmctld and slurmd started as
root from a temporary folder, and stopped by their pids.

The configuration goes to SLURM's default place, ``/etc/slurm/slurm.conf``: the job steps inside a batch job
(``srun``) find it only there. A configuration already there that this module did not write is never touched (the
tests then skip), and the one it wrote is removed afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by compactcortex's tests (tests/slurm_cluster.py); removed when they end"


def unavailable_reason() -> str | None:
    """Why a local cluster cannot start here (None: it can)."""
    missing = [name for name in (*DAEMONS, "sbatch", "squeue", "sinfo") if shutil.which(name) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing; .ci/run installs slurm-wlm and munge as root)"
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (its daemons run as root)"
    if SYSTEM_CONF.exists() and MARKER not in SYSTEM_CONF.read_text():
        return f"{SYSTEM_CONF} holds a real cluster's configuration; the test cluster does not replace it"
    return None


def _config(folder: Path, host: str, cpus: int) -> str:
    return "\n".join(
        [
            MARKER,
            "ClusterName=compactcortex-test",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"StateSaveLocation={folder}/state",
            f"SlurmdSpoolDir={folder}/spool",
            f"SlurmctldPidFile={folder}/slurmctld.pid",
            f"SlurmdPidFile={folder}/slurmd.pid",
            f"SlurmctldLogFile={folder}/slurmctld.log",
            f"SlurmdLogFile={folder}/slurmd.log",
            "SlurmctldPort=6917",
            "SlurmdPort=6918",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "MpiDefault=none",
            # schedule at once on every submission and completion (no backfill cycle to wait for)
            "SchedulerType=sched/builtin",
            # the node claims more memory than it has: the rules ask for what a real session needs, the tiny
            # test config needs far less
            "SlurmdParameters=config_overrides",
            f"NodeName={host} CPUs={cpus} RealMemory=64000 State=UNKNOWN",
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def local_cluster(folder: Path, cpus: int = 2) -> Iterator[dict[str, str]]:
    """Start the cluster; yields the environment its commands need (SLURM_CONF). Stops what it started."""
    host = socket.gethostname()
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = SYSTEM_CONF
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(_config(folder, host, cpus))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[Path] = []
    try:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        munge_pid = folder / "munge" / "munged.pid"
        subprocess.run(
            ["munged", "--force", f"--pid-file={munge_pid}", f"--log-file={folder}/munge/munged.log"],
            check=True,
            capture_output=True,
        )
        started.append(munge_pid)
        for daemon, pid in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run([daemon, "-f", str(conf)], check=True, capture_output=True, env=env)
            started.append(folder / pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env).stdout
            if state.strip() == "idle":
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"the local SLURM node did not become idle: {state!r}; see {folder}/slurmctld.log")
        yield env
    finally:
        for pid_file in reversed(started):
            deadline = time.monotonic() + 5
            while _pid(pid_file) is None and time.monotonic() < deadline:
                time.sleep(0.2)  # a daemon writes its pid file just after starting
            pid = _pid(pid_file)
            if pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        if conf.exists() and MARKER in conf.read_text():
            conf.unlink()
