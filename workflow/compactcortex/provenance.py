"""Provenance recorded on every output: code version, input checksums, the configuration used."""

from __future__ import annotations

import functools
import hashlib
import json
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


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the checkout (with '-dirty' for uncommitted changes)."""
    version = compactcortex.__version__
    try:
        described = subprocess.run(
            ["git", "-C", str(REPOSITORY_ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{version}+g{described}" if described else version


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
