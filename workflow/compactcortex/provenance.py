"""Provenance recorded on every output: code version, input checksums, the configuration used."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import compactcortex
from compactcortex.config import canonical_json, config_sha256

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
KEY_PACKAGES = ("numpy", "xarray", "netCDF4", "torch", "pynwb", "scikit-image", "snakemake")


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


CODE_VERSION_VARIABLE = "COMPACTCORTEX_CODE_VERSION"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the checkout (with '-dirty' for uncommitted changes to tracked files).

    Read once per run: the Snakefile exports it in ``COMPACTCORTEX_CODE_VERSION`` for the jobs it starts. Reading
    it never writes into the repository: ``git describe --dirty`` and a plain ``git status`` refresh the index when
    file times are stale (a job writing ``.git/index`` races the user's commit), so the commit comes from
    ``describe`` without ``--dirty`` and the changes from ``status`` with optional locks off.
    """
    if os.environ.get(CODE_VERSION_VARIABLE):
        return os.environ[CODE_VERSION_VARIABLE]
    version = compactcortex.__version__
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPOSITORY_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env=environment,
        ).stdout.strip()

    try:
        commit = git("describe", "--always", "--abbrev=12")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'-dirty' if dirty else ''}" if commit else version


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance_attrs(params: Mapping[str, Any], inputs: Iterable[str | Path] = ()) -> dict[str, str]:
    """Attributes for an output: the params it was made with (and their hash), inputs and their sha256."""
    input_paths = [Path(path) for path in inputs]
    return {
        "params_json": canonical_json(params),
        "config_sha256": config_sha256(params),
        "code_version": code_version(),
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "source_files": json.dumps([path.name for path in input_paths]),
        "source_sha256": json.dumps({path.name: sha256_file(path) for path in input_paths}, sort_keys=True),
    }
