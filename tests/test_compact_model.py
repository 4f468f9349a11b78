"""The compact model (docs/method.md section 4) and the published compact models of Cowley et al. 2023."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from compactcortex.compact.published import load_published_model, reference_predictions, reproduce_reference
from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import model_paths, published_models
from compactcortex.io.cowley2023_models import read_session_images
from compactcortex.models.compact import CompactModel, count_parameters, smooth_depthwise_kernels_

COWLEY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cowley2023"
PAPER_MEDIAN_FILTERS = [47, 57, 3, 7, 3]


def _random_eval_model(filters: list[int], image_size: int, seed: int = 0, **kwargs) -> CompactModel:
    """A float64 model in eval mode with random weights and BatchNorm statistics (so nothing is trivially zero)."""
    torch.manual_seed(seed)
    model = CompactModel(filters, image_size=image_size, **kwargs).double()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    return model.eval()


def _pass_through_model(image_size: int, centre: tuple[int, int] = (2, 2)) -> CompactModel:
    """3 channels everywhere; layer 0 copies its input, depthwise kernels are a delta at ``centre``, BN is identity."""
    model = CompactModel([3, 3, 3, 3, 3], image_size=image_size, bn_eps=0.0).double().eval()
    eye = torch.eye(3, dtype=torch.float64)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.layers["layer0_conv"].weight[:, :, 2, 2] = eye
        for k in range(1, 5):
            model.layers[f"layer{k}_conv_depth"].weight[:, 0, centre[0], centre[1]] = 1.0
            model.layers[f"layer{k}_conv_point"].weight[:, :, 0, 0] = eye
        for k in range(5):
            model.layers[f"layer{k}_bn"].weight.fill_(1.0)
    return model


# ---------------------------------------------------------------- architecture


def test_shapes_at_112_pixels_follow_the_paper() -> None:
    model = _random_eval_model([6, 7, 3, 4, 3], 112)
    x = torch.randn(2, 3, 112, 112, dtype=torch.float64)
    sizes = [tuple(out.shape) for out in model.layer_outputs(x)]
    assert sizes == [(2, 6, 112, 112), (2, 7, 56, 56), (2, 3, 28, 28), (2, 4, 28, 28), (2, 3, 28, 28)]
    assert model(x).shape == (2, 1)
    assert model.layers["Beta"].in_features == 28 * 28 * 3


def test_works_at_64_pixels_with_several_outputs() -> None:
    model = _random_eval_model([5, 5, 4, 3, 2], 64, n_outputs=7)
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    assert tuple(model.layer_outputs(x)[-1].shape) == (3, 2, 16, 16)
    assert model(x).shape == (3, 7)
    assert model.map_size == 16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filters": [3, 3, 3, 3], "image_size": 112}, "5 positive integers"),
        ({"filters": [3, 3, 0, 3, 3], "image_size": 112}, "5 positive integers"),
        ({"filters": [3, 3, 3, 3, 3], "image_size": 110}, "multiple of 4"),
        ({"filters": [3, 3, 3, 3, 3], "image_size": 112, "n_outputs": 0}, "n_outputs"),
    ],
)
def test_bad_architecture_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CompactModel(**kwargs)


def test_wrong_input_size_is_refused() -> None:
    model = CompactModel([3, 3, 3, 3, 3], image_size=64)
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 112, 112))


def test_stride2_padding_reproduces_keras_same() -> None:
    """Keras 'same' at stride 2 (even input, 5x5 kernel) pads 1 before: output i is centred on input 2i + 1."""
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    outputs = _pass_through_model(32).layer_outputs(x)
    torch.testing.assert_close(outputs[0], x)
    torch.testing.assert_close(outputs[1], x[:, :, 1::2, 1::2])
    torch.testing.assert_close(outputs[2], x[:, :, 1::2, 1::2][:, :, 1::2, 1::2])
    torch.testing.assert_close(outputs[4], outputs[2])  # stride-1 'same' stages with a centred delta change nothing
    # A delta at the kernel's top-left reads input 2i - 1: row/column 0 falls on the padding.
    corner = _pass_through_model(32, centre=(0, 0)).layer_outputs(x)[1]
    assert torch.all(corner[:, :, 0, :] == 0) and torch.all(corner[:, :, :, 0] == 0)
    torch.testing.assert_close(corner[:, :, 1:, 1:], x[:, :, 1:-2:2, 1:-2:2])


@pytest.mark.parametrize(("row", "col", "channel"), [(0, 0, 1), (2, 3, 0), (3, 1, 2)])
def test_readout_flattens_channels_last(row: int, col: int, channel: int) -> None:
    model = _random_eval_model([4, 4, 4, 4, 3], 16)
    side, channels = model.map_size, model.filters[-1]
    with torch.no_grad():
        model.layers["Beta"].weight.zero_()
        model.layers["Beta"].bias.zero_()
        model.layers["Beta"].weight[0, (row * side + col) * channels + channel] = 1.0
        model.layers["layer4_bn"].bias.fill_(3.0)  # keep the last stage's units active
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64) * 50
    last = model.layer_outputs(x)[-1]
    assert last[:, channel, row, col].abs().sum() > 0  # the picked unit is active, so the check can fail
    torch.testing.assert_close(model(x)[:, 0], last[:, channel, row, col])


def test_preprocess_subtracts_the_channel_means_and_puts_channels_first() -> None:
    model = CompactModel([3, 3, 3, 3, 3], image_size=8).double()
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    images[1, 2, 5] = (255, 0, 117)
    x = model.preprocess(images)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float64
    torch.testing.assert_close(x[1, :, 2, 5], torch.tensor([255 - 116.222, -109.270, 117 - 100.381], dtype=x.dtype))
    torch.testing.assert_close(x[0, :, 0, 0], -torch.tensor([116.222, 109.270, 100.381], dtype=x.dtype))
    with pytest.raises(ValueError, match="uint8"):
        model.preprocess(images.astype(np.float32))


def test_config_rebuilds_the_same_model() -> None:
    model = _random_eval_model([5, 6, 3, 4, 3], 32, n_outputs=2, means=(1.0, 2.0, 3.0))
    config = json.loads(json.dumps(model.config()))
    assert config == {
        "filters": [5, 6, 3, 4, 3],
        "image_size": 32,
        "n_outputs": 2,
        "means": [1.0, 2.0, 3.0],
        "bn_eps": 1e-5,
    }
    rebuilt = CompactModel.from_config(config).double()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.eval()
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    torch.testing.assert_close(rebuilt(rebuilt.preprocess(images)), model(model.preprocess(images)), rtol=0, atol=0)
    assert rebuilt.filters == (5, 6, 3, 4, 3)


def test_parameter_count_formula() -> None:
    # [47, 57, 3, 7, 3] at 112 px, by hand (BatchNorm counts scale and shift; running statistics are not trained):
    by_hand = (
        (3 * 25 * 47 + 47) + 2 * 47  # layer 0: 3,572 + 94
        + (47 * 25 + 47 * 57 + 57) + 2 * 57  # layer 1: 3,911 + 114
        + (57 * 25 + 57 * 3 + 3) + 2 * 3  # layer 2: 1,599 + 6
        + (3 * 25 + 3 * 7 + 7) + 2 * 7  # layer 3: 103 + 14
        + (7 * 25 + 7 * 3 + 3) + 2 * 3  # layer 4: 199 + 6
        + (28 * 28 * 3 + 1)  # readout: 2,353
    )  # fmt: skip
    assert by_hand == 11_971
    model = CompactModel(PAPER_MEDIAN_FILTERS)
    assert model.n_parameters() == count_parameters(PAPER_MEDIAN_FILTERS) == by_hand
    print(f"\nparameters of the paper's median filters {PAPER_MEDIAN_FILTERS} at 112 px: {by_hand:,}")
    # The Keras summary of the published 190923 neuron 0 model ([48, 60, 3, 3, 3]): 12,232 trainable parameters.
    assert CompactModel([48, 60, 3, 3, 3]).n_parameters() == 12_232
    for filters, size, outputs in [([10, 20, 5, 6, 4], 64, 3), ([100] * 5, 112, 1)]:
        assert count_parameters(filters, size, outputs) == CompactModel(filters, size, outputs).n_parameters()


# ---------------------------------------------------------------- Gaussian smoothing of the depthwise kernels


def test_smoothing_turns_a_delta_into_a_small_gaussian() -> None:
    sigma = 0.8
    model = CompactModel([2, 2, 2, 2, 2], image_size=16).double()
    untouched = {name: p.clone() for name, p in model.named_parameters() if "conv_depth" not in name}
    with torch.no_grad():
        for k in range(1, 5):
            weight = model.layers[f"layer{k}_conv_depth"].weight
            weight.zero_()
            weight[:, 0, 2, 2] = 1.0
    smooth_depthwise_kernels_(model, sigma)
    # The blur is a same-size zero-padded convolution with a normalised Gaussian over [-3, 3] (radius ceil(3 sigma)).
    x = np.arange(-3, 4)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    expected = torch.from_numpy(np.outer(g[1:-1], g[1:-1]))
    for k in range(1, 5):
        weight = model.layers[f"layer{k}_conv_depth"].weight
        for channel in range(2):
            torch.testing.assert_close(weight[channel, 0], expected)
    kernel = model.layers["layer1_conv_depth"].weight[0, 0].detach()
    assert kernel.argmax() == 12 and 0.2 < float(kernel[2, 2]) < 0.3  # still peaked: a light blur
    assert 0.99 < float(kernel.sum()) <= 1.0
    for name, param in model.named_parameters():
        if name in untouched:
            assert torch.equal(param, untouched[name]), name


def test_smoothing_with_sigma_zero_is_the_identity_and_is_deterministic() -> None:
    model = _random_eval_model([4, 5, 3, 3, 3], 16)
    before = {name: p.clone() for name, p in model.named_parameters()}
    smooth_depthwise_kernels_(model, 0.0)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    twin = _random_eval_model([4, 5, 3, 3, 3], 16)
    smooth_depthwise_kernels_(model, 0.6)
    smooth_depthwise_kernels_(twin, 0.6)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))
    assert not torch.equal(model.layers["layer2_conv_depth"].weight, before["layers.layer2_conv_depth.weight"])
    with pytest.raises(ValueError, match="sigma"):
        smooth_depthwise_kernels_(model, -1.0)


# ---------------------------------------------------------------- published layout, on synthetic files


def _write_published(root: Path, session: str, neuron: int, filters: list[int], seed: int = 0) -> CompactModel:
    model = _random_eval_model(filters, 112, seed=seed)
    pt_path, npy_path = model_paths(root, session, neuron)
    pt_path.parent.mkdir(parents=True, exist_ok=True)
    npy_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), pt_path)
    np.save(npy_path, np.asarray(filters, dtype=np.int64))
    return model


def test_synthetic_published_model_round_trips(tmp_path: Path) -> None:
    saved = _write_published(tmp_path, "000001", 10, [4, 5, 3, 3, 3])
    _write_published(tmp_path, "000001", 2, [3, 3, 3, 3, 3], seed=1)
    (tmp_path / "compact_models_torch" / "notes.txt").write_text("not a model")
    assert published_models(tmp_path) == [("000001", 2), ("000001", 10)]
    loaded = load_published_model(tmp_path, "000001", 10)
    assert not loaded.training and loaded.filters == (4, 5, 3, 3, 3)
    x = torch.randn(2, 3, 112, 112, dtype=torch.float64)
    torch.testing.assert_close(loaded(x), saved(x), rtol=0, atol=0)
    assert published_models(tmp_path / "absent") == []


def test_truncated_or_corrupt_model_file_names_the_file(tmp_path: Path) -> None:
    _write_published(tmp_path, "000001", 0, [4, 5, 3, 3, 3])
    pt_path, _ = model_paths(tmp_path, "000001", 0)
    data = pt_path.read_bytes()
    for broken in (data[: len(data) // 2], b"not a pickle at all"):
        pt_path.write_bytes(broken)
        with pytest.raises(InputDataError, match="corrupt or truncated") as info:
            load_published_model(tmp_path, "000001", 0)
        assert str(info.value).startswith(str(pt_path)) and info.value.path == pt_path
    pt_path.unlink()
    with pytest.raises(InputDataError, match="no such model file") as info:
        load_published_model(tmp_path, "000001", 0)
    assert info.value.path == pt_path


def test_filter_count_mismatch_names_the_file(tmp_path: Path) -> None:
    _write_published(tmp_path, "000001", 0, [4, 5, 3, 3, 3])
    pt_path, npy_path = model_paths(tmp_path, "000001", 0)
    np.save(npy_path, np.asarray([4, 5, 3, 4, 3]))
    with pytest.raises(InputDataError, match=r"\[4, 5, 3, 4, 3\] disagree .* \[4, 5, 3, 3, 3\]") as info:
        load_published_model(tmp_path, "000001", 0)
    assert str(info.value).startswith(str(npy_path))
    np.save(npy_path, np.asarray([4.0, 5, 3, 3, 3]))
    with pytest.raises(InputDataError, match="integer filter counts"):
        load_published_model(tmp_path, "000001", 0)
    npy_path.unlink()
    with pytest.raises(InputDataError) as info:
        load_published_model(tmp_path, "000001", 0)
    assert info.value.path == npy_path


def test_state_dict_missing_a_tensor_names_the_file(tmp_path: Path) -> None:
    _write_published(tmp_path, "000001", 0, [4, 5, 3, 3, 3])
    pt_path, _ = model_paths(tmp_path, "000001", 0)
    state = torch.load(pt_path, weights_only=True)
    del state["layers.layer3_bn.running_var"]
    torch.save(state, pt_path)
    with pytest.raises(InputDataError, match="running_var") as info:
        load_published_model(tmp_path, "000001", 0)
    assert info.value.path == pt_path
    state["layers.layer3_bn.running_var"] = torch.full((3,), float("nan"), dtype=torch.float64)
    torch.save(state, pt_path)
    with pytest.raises(InputDataError, match="non-finite"):
        load_published_model(tmp_path, "000001", 0)


# ---------------------------------------------------------------- the published models themselves


@pytest.fixture(scope="module")
def cowley_root() -> Path:
    if not (COWLEY_DIR / "reference_predictions.npz").is_file():
        pytest.skip(f"the published Cowley et al. 2023 data are not at {COWLEY_DIR}")
    return COWLEY_DIR


@pytest.mark.shared_data
def test_published_models_reproduce_the_fixture(cowley_root: Path) -> None:
    difference = reproduce_reference(cowley_root)
    print(f"\nmax |ours - reference_predictions.npz| over 5 models x 16 images: {difference:.3g}")
    assert difference <= 1e-6


@pytest.mark.shared_data
def test_published_models_in_float32_reproduce_the_fixture_to_about_1e6(cowley_root: Path) -> None:
    """The pipeline scores the published models in float32 (ten times faster than float64 on a CPU)."""
    computed, stored = reference_predictions(cowley_root, dtype=torch.float32)
    assert np.max(np.abs(computed - stored)) <= 2e-6


@pytest.mark.shared_data
def test_keras_batchnorm_epsilon_does_not_reproduce_the_fixture(cowley_root: Path) -> None:
    """The stored state dicts were written for PyTorch's BatchNorm epsilon (1e-5), not Keras's (1e-3)."""
    computed, stored = reference_predictions(cowley_root, bn_eps=1e-3)
    assert np.max(np.abs(computed - stored)) > 1e-2


@pytest.mark.shared_data
def test_every_published_model_loads_strictly(cowley_root: Path) -> None:
    pairs = published_models(cowley_root)
    sessions = [session for session, _ in pairs]
    assert len(pairs) == 122 and sessions.count("190923") == 33 and sessions.count("201025") == 89
    images = torch.zeros(2, 3, 112, 112, dtype=torch.float64)
    images[1].uniform_(-100.0, 150.0, generator=torch.Generator().manual_seed(0))
    counts = []
    for session, neuron in pairs:
        model = load_published_model(cowley_root, session, neuron)
        pt_path, npy_path = model_paths(cowley_root, session, neuron)
        assert model.filters == tuple(np.load(npy_path).tolist())
        assert set(model.state_dict()) == set(torch.load(pt_path, weights_only=True))
        with torch.no_grad():
            out = model(images)
        assert out.shape == (2, 1) and torch.isfinite(out).all()
        counts.append(model.n_parameters())
    median = float(np.median(counts))
    print(
        f"\npublished compact models: median {median:,.0f} trainable parameters (range {min(counts):,}-{max(counts):,})"
    )
    assert 5_000 <= median <= 25_000
    assert counts[pairs.index(("190923", 0))] == 12_232  # the Keras summary of that model


@pytest.mark.shared_data
def test_read_session_images_by_one_based_index(cowley_root: Path) -> None:
    picked = read_session_images(cowley_root, "190923", [3, 1])
    assert picked.shape == (2, 112, 112, 3) and picked.dtype == np.uint8
    everything = read_session_images(cowley_root, "190923")
    assert everything.shape == (1200, 112, 112, 3)
    np.testing.assert_array_equal(picked, everything[[2, 0]])
    with pytest.raises(InputDataError, match="image1201"):
        read_session_images(cowley_root, "190923", [1, 1201])


@pytest.mark.shared_data
def test_truncated_copy_of_a_published_file_names_it(cowley_root: Path, tmp_path: Path) -> None:
    for source in model_paths(cowley_root, "190923", 0):
        target = tmp_path / source.parent.name / source.name
        target.parent.mkdir()
        shutil.copyfile(source, target)
    pt_path, _ = model_paths(tmp_path, "190923", 0)
    assert load_published_model(tmp_path, "190923", 0).filters == (48, 60, 3, 3, 3)
    pt_path.write_bytes(pt_path.read_bytes()[:-2000])
    with pytest.raises(InputDataError) as info:
        load_published_model(tmp_path, "190923", 0)
    assert str(info.value).startswith(str(pt_path))
