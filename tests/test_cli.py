"""The ``compactcortex`` command on the tiny run's outputs and on a published model: what each command prints or
writes, and a clear error for a wrong path or a corrupt model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import compactcortex as cc
from compactcortex.cli import main

COMMANDS = ("predict", "info", "synthesize", "export", "summary")


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    return result.exit_code, result.output


def _image_files(folder: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    paths = [folder / "wide.png", folder / "small.jpg"]
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(paths[1], quality=95)
    return paths


def test_the_command_is_installed_and_every_command_has_help() -> None:
    script = Path(sys.executable).with_name("compactcortex")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert all(command in result.stdout for command in COMMANDS)
    for command in COMMANDS:
        code, output = _invoke(command, "--help")
        assert code == 0 and "Usage:" in output and "--help" in output


def test_wrong_paths_and_corrupt_models_end_with_the_file_named(tmp_path: Path) -> None:
    code, output = _invoke("info", tmp_path / "absent.json")
    assert code == 1 and "absent.json: no such model file" in output
    corrupt = tmp_path / "t05_n000.json"
    corrupt.write_text('{"format": "compactcortex.compact_model/1", "sess')
    code, output = _invoke("info", corrupt)
    assert code == 1 and "t05_n000.json: is not a readable JSON model card" in output and "Traceback" not in output
    code, output = _invoke("summary", tmp_path)
    assert code == 1 and "summary.json: run summary not found" in output


@pytest.mark.slow
def test_the_commands_on_the_tiny_runs_outputs(tiny_local_run: Path, tmp_path: Path) -> None:
    results = tiny_local_run / "results" / "tiny"
    card = sorted(results.glob("compact/t05/models/*/*.json"))[0]
    model = cc.load_compact_model(card)
    images = _image_files(tmp_path)

    code, output = _invoke("predict", card, *images, "-o", tmp_path / "out.csv")
    assert code == 0, output
    table = pd.read_csv(tmp_path / "out.csv", comment="#")
    assert list(table.columns) == ["image", model.neurons[0]] and table["image"].tolist() == [str(p) for p in images]
    expected = model.predict([np.asarray(Image.open(path).convert("RGB")) for path in images])[:, 0]
    np.testing.assert_allclose(table[model.neurons[0]], expected, rtol=1e-5)
    assert (tmp_path / "out.csv").read_text().startswith("# responses in spikes per 100 ms counting window\n")

    code, output = _invoke("predict", results, images[0], "--session", "t05")
    assert code == 0, output
    assert output.splitlines()[1].split(",")[1:] == cc.load_ensemble(results, "t05").neurons
    code, output = _invoke("predict", results, images[0])
    assert code == 2 and "--session" in output

    code, output = _invoke("info", card, "--json")
    details = json.loads(output)
    assert details["filters_per_layer"] == json.loads(card.read_text())["architecture"]["filters"]
    assert details["n_parameters"] == json.loads(card.read_text())["n_parameters"]
    assert {"fidelity_r2", "r2_er", "r"} <= set(details) and details["provenance"]["session"] == "t05"
    code, output = _invoke("info", card)
    assert code == 0 and "filters_per_layer:" in output and "code_version:" in output

    png = tmp_path / "max.png"
    code, output = _invoke("synthesize", card, "-o", png, "--steps", "20", "--starts", "2", "--size", "32")
    assert code == 0, output
    image = np.asarray(Image.open(png))
    assert image.shape == (32, 32, 3) and image.std() > 0
    (result,) = [line for line in output.splitlines() if line.startswith(f"{png}: 32 x 32 px; response ")]
    response = float(result.split("response ")[1].split()[0])
    assert "maximizing image: step 20/20 (100%)" in output, "the synthesis logs its progress"
    assert response == pytest.approx(model.predict(image)[0, 0], rel=1e-3)
    noise = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    assert response > model.predict(noise).max(), "the maximizing image drives the model more than noise does"

    code, output = _invoke("export", card, "--onnx", tmp_path / "m.onnx")
    assert code == 0 and (tmp_path / "m.onnx").stat().st_size > 1000

    code, output = _invoke("summary", results)
    summary = json.loads((results / "summary.json").read_text())
    assert code == 0 and "| tiny | |" in output and "| t05 |" in output
    assert f"| ensemble: median r | {summary['ensemble']['median_r']:.3f} |" in output


def test_the_commands_on_a_published_model(cowley_dir: Path, tmp_path: Path) -> None:
    path = cowley_dir / "compact_models_torch" / "compact_model_201025_neuron7.pt"
    code, output = _invoke("info", path, "--json")
    details = json.loads(output)
    filters = np.load(cowley_dir / "compact_models_nums_filters" / "compact_model_201025_neuron7.npy").tolist()
    assert code == 0 and details["filters_per_layer"] == filters and details["neurons"] == ["201025_n007"]
    code, output = _invoke("predict", path, *_image_files(tmp_path))
    assert code == 0 and output.startswith("# responses in the neuron's z-scored response")
    assert len(pd.read_csv(io.StringIO(output), comment="#")) == 2
