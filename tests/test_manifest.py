"""MANIFEST and verify: identical bytes, differences within a named tolerance, and real differences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image

from compactcortex.io.manifest import MANIFEST, main, output_files, verify, write_manifest
from compactcortex.provenance import sha256_file


def make_results(folder: Path) -> Path:
    results = folder / "results" / "demo"
    (results / "tables").mkdir(parents=True)
    (results / "logs").mkdir()
    (results / "figures").mkdir()
    pd.DataFrame({"neuron": ["a", "b"], "r": [0.5, 0.25]}).to_csv(results / "tables" / "scores.csv", index=False)
    xr.Dataset({"rate": (("neuron",), np.array([1.0, 2.0]))}).to_netcdf(results / "rates.nc")
    (results / "summary.json").write_text(json.dumps({"median_r": 0.375, "n": 2}))
    torch.save({"weight": torch.tensor([1.0, 2.0])}, results / "model.pt")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(results / "figures" / "fig.png")
    (results / "logs" / "job.log").write_text("took 3.2 s")
    (results / "report.html").write_text("<html>timings</html>")
    return results


def fresh_copy(results: Path, folder: Path) -> Path:
    fresh = folder / "fresh" / "demo"
    shutil.copytree(results, fresh)
    (fresh / MANIFEST).unlink()
    return fresh


def test_manifest_lists_outputs_with_checksums_config_and_software(tmp_path: Path) -> None:
    results = make_results(tmp_path)
    path = write_manifest(results, {"dataset": "demo", "seed": 1})
    manifest = json.loads(path.read_text())
    assert sorted(manifest["files"]) == ["figures/fig.png", "model.pt", "rates.nc", "summary.json", "tables/scores.csv"]
    assert manifest["files"]["rates.nc"] == sha256_file(results / "rates.nc")
    assert manifest["config"] == {"dataset": "demo", "seed": 1} and manifest["packages"]["numpy"] == np.__version__
    assert [str(p) for p in output_files(results)] == sorted(manifest["files"])  # the manifest is not listed


def test_an_identical_rerun_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = make_results(tmp_path)
    write_manifest(results, {"dataset": "demo"})
    fresh = fresh_copy(results, tmp_path)
    assert {row["result"] for row in verify(results / MANIFEST, fresh)} == {"identical"}
    assert main([str(results / MANIFEST), str(fresh)]) == 0
    assert "reproduces the manifest" in capsys.readouterr().out


def test_floating_point_noise_is_within_a_named_tolerance(tmp_path: Path) -> None:
    results = make_results(tmp_path)
    write_manifest(results, {"dataset": "demo"})
    fresh = fresh_copy(results, tmp_path)
    pd.DataFrame({"neuron": ["a", "b"], "r": [0.5 + 1e-12, 0.25]}).to_csv(fresh / "tables" / "scores.csv", index=False)
    xr.Dataset({"rate": (("neuron",), np.array([1.0, 2.0 + 1e-10]))}).to_netcdf(fresh / "rates.nc")
    torch.save({"weight": torch.tensor([1.0, 2.000002])}, fresh / "model.pt")
    rows = {row["output"]: row for row in verify(results / MANIFEST, fresh)}
    for name in ("tables/scores.csv", "rates.nc", "model.pt"):
        assert rows[name]["result"] == "within tolerance" and "rtol" in rows[name]["detail"], rows[name]
    assert rows["summary.json"]["result"] == "identical"


def test_real_differences_missing_and_extra_outputs_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = make_results(tmp_path)
    write_manifest(results, {"dataset": "demo"})
    fresh = fresh_copy(results, tmp_path)
    (fresh / "summary.json").write_text(json.dumps({"median_r": 0.4, "n": 2}))
    Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(fresh / "figures" / "fig.png")
    (fresh / "rates.nc").unlink()
    (fresh / "new.csv").write_text("a\n1\n")
    (fresh / "logs" / "job.log").write_text("took 9.9 s")  # logs are not compared
    rows = {row["output"]: row["result"] for row in verify(results / MANIFEST, fresh)}
    assert rows == {
        "figures/fig.png": "DIFFERENT",
        "model.pt": "identical",
        "rates.nc": "MISSING",
        "summary.json": "DIFFERENT",
        "tables/scores.csv": "identical",
        "new.csv": "EXTRA",
    }
    assert main([str(results / MANIFEST), str(fresh)]) == 1
    assert "FAILED" in capsys.readouterr().out
