"""The public API: models load from their files and predict in spikes per counting window, mappings load without
pickle, ONNX Runtime agrees with PyTorch, and the README's example runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import compactcortex as cc
from compactcortex.api.images import centred_square
from compactcortex.errors import InputDataError
from compactcortex.io.compact_models import save_compact_model
from compactcortex.io.members import load_readouts, read_response_scale, readout_neurons, save_readouts
from compactcortex.io.predictions import read_predictions
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.models.compact import CompactModel
from compactcortex.models.ensemble import FactorisedReadout
from compactcortex.response_scale import ResponseScale
from compactcortex.ridge import fit_ridge

REPOSITORY = Path(__file__).resolve().parents[1]
SCALE = ResponseScale(np.array([4.0, 7.5]), np.array([2.0, 0.5]), "spikes per 100 ms counting window")


def _card_model(tmp_path: Path, image_size: int = 16) -> tuple[CompactModel, Path]:
    torch.manual_seed(0)
    network = CompactModel([3, 4, 4, 3, 2], image_size=image_size).eval()
    card = {
        "session": "s1",
        "neuron": "s1_n000",
        "response_mean": 4.0,
        "response_sd": 2.0,
        "response_units": SCALE.units,
        "fidelity_r2": 0.9,
    }
    return network, save_compact_model(network, card, tmp_path, "s1_n000")


def test_readouts_load_without_pickle_and_predict_as_saved(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    embedding = torch.from_numpy(rng.normal(size=(30, 4, 2, 2)).astype(np.float32))
    ridge = fit_ridge(embedding.flatten(1).numpy().astype(np.float64), rng.normal(size=(30, 2)), [3.0]).model(3.0)
    factorised = FactorisedReadout(4, 2, 2, 2).eval()
    for method, readout in (("ridge", ridge), ("factorised", factorised)):
        path = tmp_path / f"{method}.pt"
        save_readouts(path, method, ["n0", "n1"], [readout], SCALE)
        torch.load(path, weights_only=True)  # tensors, strings and lists only: no pickled object
        expected = ridge.predict(embedding.flatten(1).numpy()).T if method == "ridge" else None
        if expected is None:
            with torch.no_grad():
                expected = factorised(embedding).numpy().T
        np.testing.assert_array_equal(load_readouts(path)[0](embedding), expected)
        assert readout_neurons(path) == ["n0", "n1"]
        scale = read_response_scale(path)
        np.testing.assert_array_equal(scale.sd, SCALE.sd)
        assert scale.units == SCALE.units


def test_readouts_of_an_older_version_name_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "s1.pt"
    torch.save({"method": "ridge", "neuron_ids": ["n0"], "readouts": [object.__new__(ResponseScale)]}, path)
    with pytest.raises(InputDataError, match=r"s1\.pt.*rerun rule map_session"):
        readout_neurons(path)


def test_a_compact_model_predicts_spike_counts_from_images_of_any_size(tmp_path: Path) -> None:
    network, card = _card_model(tmp_path)
    model = cc.load_compact_model(card)
    assert model.neurons == ["s1_n000"] and model.units == SCALE.units and model.image_size == 16
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    with torch.no_grad():
        z = network(network.preprocess(images)).numpy()
    np.testing.assert_allclose(model.predict(images), 4.0 + 2.0 * z, rtol=1e-6)
    wide = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)  # non-square: its centred 24 x 24 square is used
    mixed = model.predict([images[0], wide])
    np.testing.assert_allclose(mixed[0], model.predict(images[0])[0])
    np.testing.assert_allclose(mixed[1], model.predict(wide[:, 8:32])[0])
    assert centred_square(np.zeros((24, 41, 3))).shape == (24, 24, 3)
    with pytest.raises(ValueError, match="uint8"):
        model.predict(images.astype(np.float32))


def test_a_model_file_that_is_neither_kind_is_refused_by_name(tmp_path: Path) -> None:
    stray = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(1)}, stray)
    with pytest.raises(InputDataError, match="weights.pt: is neither a model card"):
        cc.load_compact_model(stray)
    with pytest.raises(InputDataError, match="no such model file"):
        cc.load_compact_model(tmp_path / "absent.json")


def _onnx_agrees(model: cc.CompactNeuronModel, path: Path) -> None:
    import onnxruntime

    from compactcortex.api.export import ExportedModel

    cc.export_onnx(model, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = model.image_size
    pixels = np.random.default_rng(2).integers(0, 256, (6, size, size, 3)).astype(np.float32)
    (from_onnx,) = session.run(None, {"images": pixels})
    with torch.no_grad():
        from_torch = ExportedModel(model)(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(from_onnx, from_torch, rtol=0, atol=1e-5)
    np.testing.assert_allclose(from_onnx, model.predict(pixels.astype(np.uint8)), rtol=1e-4, atol=1e-4)
    assert session.get_modelmeta().custom_metadata_map["neurons"] == f'["{model.neurons[0]}"]'


def test_onnx_runtime_predicts_what_pytorch_predicts(tmp_path: Path) -> None:
    _, card = _card_model(tmp_path)
    _onnx_agrees(cc.load_compact_model(card), tmp_path / "model.onnx")


def test_a_published_model_loads_predicts_and_exports(cowley_dir: Path, tmp_path: Path) -> None:
    path = cowley_dir / "compact_models_torch" / "compact_model_190923_neuron4.pt"
    model = cc.load_compact_model(path)
    assert model.neurons == ["190923_n004"] and model.info()["filters_per_layer"] == [53, 45, 3, 10, 5]
    assert "z-scored" in model.units
    _onnx_agrees(model, tmp_path / "published.onnx")


@pytest.mark.slow
def test_the_api_reproduces_the_pipelines_predictions(tiny_local_run: Path) -> None:
    """The ensemble loaded by the API predicts a test session's images as rule map_session did (its members' mean,
    in spike counts); a compact model as its card's session predictions do."""
    results = tiny_local_run / "results" / "tiny"
    with open_session_dataset(results / "sessions" / "t05.nc") as dataset:
        images = dataset["images"].values[:40]
    ensemble = cc.load_ensemble(results, "t05")
    members, neurons = read_predictions(results / "ensemble" / "predictions" / "t05.nc")
    assert ensemble.neurons == list(neurons)
    expected = ensemble.scale.to_responses(members.mean(axis=0)[:, :40].T)
    np.testing.assert_allclose(ensemble.predict(images), expected, rtol=1e-5, atol=1e-5)
    card = sorted(results.glob("compact/t05/models/*/*.json"))[0]
    model = cc.load_compact_model(card)
    assert model.units == "spikes per 100 ms counting window"
    compact, compact_neurons = read_predictions(results / "compact" / "t05" / "predictions.nc")
    row = list(compact_neurons).index(model.neurons[0])
    z = compact[0, row, :40] if compact.ndim == 3 else compact[row, :40]
    np.testing.assert_allclose(model.predict(images)[:, 0], model.scale.to_responses(z[:, None])[:, 0], atol=1e-5)
    with pytest.raises(InputDataError, match="no mapping for session 't01'; mapped sessions: t05"):
        cc.load_ensemble(results, "t01")


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tiny_local_run: Path, tmp_path: Path) -> None:
    readme = (REPOSITORY / "README.md").read_text()
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```\n<!-- api-example end -->", readme, re.S)
    assert block, "README.md lost its API example block"
    code = block.group(1)
    assert 'Path("results/virtual_v4")' in code and len(code.strip().splitlines()) <= 16
    code = code.replace('Path("results/virtual_v4")', f'Path("{tiny_local_run / "results" / "tiny"}")')
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(code, "README.md (api-example)", "exec"), namespace)  # noqa: S102 - the README's own code
    finally:
        os.chdir(cwd)
    assert namespace["responses"].shape == (5, 1) and np.isfinite(namespace["teacher"]).all()
    assert (tmp_path / "compact_model.onnx").stat().st_size > 1000
