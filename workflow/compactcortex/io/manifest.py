"""Archival reproduction: ``results/<dataset>/MANIFEST`` records every output's sha256 with the config, the code
version and the resolved package versions; ``verify`` compares a fresh rerun against it.

On a CPU the same machine gives identical bytes (seeds from the config, no clocks in the outputs). Where bytes
differ, each output is compared by what it holds, and the report names the output and the tolerance it met:
NetCDF variables, CSV columns, JSON values and tensors to ``RTOL``/``ATOL`` (floating point on other hardware or
thread counts), figures by their pixels. Anything else that differs is a failure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from compactcortex.atomic import write_text_atomic
from compactcortex.config import canonical_json, config_sha256
from compactcortex.provenance import code_version, sha256_file

MANIFEST = "MANIFEST"
FORMAT = "compactcortex.manifest/1"
EXCLUDED_DIRS = ("logs", "benchmarks")  # wall-clock times and machine-specific paths
# the report and timings hold wall-clock times; the report's screenshot (tests/test_report.py) is of the report
EXCLUDED_FILES = (MANIFEST, "report.html", "report_screenshot.png", "timings.tsv")
RTOL, ATOL = 1e-5, 1e-8


def output_files(results: Path) -> list[Path]:
    """Every output under ``results`` that the manifest covers, as paths relative to it, sorted."""
    files = []
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(results)
        if not path.is_file() or relative.parts[0] in EXCLUDED_DIRS or relative.name in EXCLUDED_FILES:
            continue
        if any(part.startswith(".") for part in relative.parts):  # temporary files of an interrupted write
            continue
        files.append(relative)
    return files


def resolved_packages() -> dict[str, str]:
    """Every installed distribution and its version (the environment the run resolved to)."""
    return dict(sorted((d.metadata["Name"].lower(), d.version) for d in metadata.distributions() if d.metadata["Name"]))


def write_manifest(results: str | Path, config: Mapping[str, Any]) -> Path:
    results = Path(results)
    files = {str(path): sha256_file(results / path) for path in output_files(results)}
    manifest = {
        "format": FORMAT,
        "config": json.loads(canonical_json(config)),
        "config_sha256": config_sha256(config),
        "code_version": code_version(),
        "python": sys.version.split()[0],
        "packages": resolved_packages(),
        "files": files,
    }
    path = results / MANIFEST
    write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- comparison
def _is_checksum(key: Any) -> bool:
    """Provenance checksums of inputs (``source_sha256``, ``state_dict_sha256``, ...): they change whenever an input
    changes within tolerance, and every input is verified on its own."""
    return isinstance(key, str) and "sha256" in key


def _close(a: Any, b: Any) -> bool:
    """Equal, or numbers (nested in lists, dicts and arrays) within the tolerance; checksums of inputs skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_is_checksum(k) or _close(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return _arrays_close(a, b)
    if hasattr(a, "__dict__") and type(a) is type(b) and not isinstance(a, type):
        return _close(vars(a), vars(b))  # e.g. a fitted readout object
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL) or (math.isnan(a) and math.isnan(b))
    return a == b


def _arrays_close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
    return bool(np.array_equal(a, b))


def _netcdf_close(a: Path, b: Path) -> bool:
    import xarray as xr

    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        names = set(x.variables)
        if names != set(y.variables):
            return False
        return all(_arrays_close(np.asarray(x[n].values), np.asarray(y[n].values)) for n in names)


def _csv_close(a: Path, b: Path) -> bool:
    import pandas as pd

    x, y = pd.read_csv(a, sep=None, engine="python"), pd.read_csv(b, sep=None, engine="python")
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return False
    return all(_arrays_close(x[c].to_numpy(), y[c].to_numpy()) for c in x.columns)


def _torch_close(a: Path, b: Path) -> bool:
    import torch

    def flat(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from flat(item, f"{prefix}/{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                yield from flat(item, f"{prefix}/{index}")
        else:
            yield prefix, value

    x = dict(flat(torch.load(a, map_location="cpu", weights_only=True)))
    y = dict(flat(torch.load(b, map_location="cpu", weights_only=True)))
    if x.keys() != y.keys():
        return False
    for key in x:
        if _is_checksum(key):
            continue
        u, v = x[key], y[key]
        if isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor):
            if not _arrays_close(_numpy(u), _numpy(v)):
                return False
        elif not _close(u, v):
            return False
    return True


def _numpy(tensor: Any) -> np.ndarray:
    return (tensor.double() if tensor.is_floating_point() else tensor).numpy()


def _png_close(a: Path, b: Path) -> bool:
    from PIL import Image

    return bool(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))))


TOLERANT = {
    ".nc": (_netcdf_close, f"every variable within rtol {RTOL}, atol {ATOL} (attributes not compared)"),
    ".csv": (_csv_close, f"every column within rtol {RTOL}, atol {ATOL}"),
    ".tsv": (_csv_close, f"every column within rtol {RTOL}, atol {ATOL}"),
    ".json": (
        lambda a, b: _close(json.loads(a.read_text()), json.loads(b.read_text())),
        f"every number within rtol {RTOL}, atol {ATOL} (checksums of inputs not compared)",
    ),
    ".pt": (_torch_close, f"every tensor within rtol {RTOL}, atol {ATOL} (checksums of inputs not compared)"),
    ".png": (_png_close, "identical pixels"),
}


def verify(manifest_path: str | Path, fresh: str | Path) -> list[dict[str, str]]:
    """One row per manifest file: ``identical``, ``within tolerance`` (naming it), ``DIFFERENT`` or ``MISSING``;
    plus ``EXTRA`` for outputs of the fresh run the manifest lacks."""
    manifest_path, fresh = Path(manifest_path), Path(fresh)
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path} is not a {FORMAT} manifest")
    original = manifest_path.parent
    rows = []
    for name, digest in manifest["files"].items():
        path = fresh / name
        if not path.is_file():
            rows.append({"output": name, "result": "MISSING", "detail": "not made by the fresh run"})
        elif sha256_file(path) == digest:
            rows.append({"output": name, "result": "identical", "detail": ""})
        elif path.suffix in TOLERANT and (original / name).is_file():
            close, tolerance = TOLERANT[path.suffix]
            try:
                same = close(original / name, path)
            except Exception as exc:  # noqa: BLE001 - an unreadable output is a difference, reported as such
                same, tolerance = False, f"cannot be compared: {exc}"
            rows.append({"output": name, "result": "within tolerance" if same else "DIFFERENT", "detail": tolerance})
        else:
            rows.append({"output": name, "result": "DIFFERENT", "detail": "bytes differ"})
    for extra in sorted(set(map(str, output_files(fresh))) - set(manifest["files"])):
        rows.append({"output": extra, "result": "EXTRA", "detail": "not in the manifest"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare a fresh rerun's outputs with a MANIFEST.")
    parser.add_argument("manifest", help="results/<dataset>/MANIFEST of the archived run")
    parser.add_argument("fresh", help="results/<dataset> of the fresh rerun")
    args = parser.parse_args(argv)
    rows = verify(args.manifest, args.fresh)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["result"]] = counts.get(row["result"], 0) + 1
        if row["result"] != "identical":
            print(f"{row['result']:>16}  {row['output']}  {row['detail']}")
    print(", ".join(f"{n} {result}" for result, n in sorted(counts.items())))
    failed = sum(counts.get(key, 0) for key in ("DIFFERENT", "MISSING", "EXTRA"))
    print("verify: " + ("FAILED" if failed else "the rerun reproduces the manifest"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
