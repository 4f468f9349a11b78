"""One ensemble member: a shared core on frozen backbone features plus a factorised readout per session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class CoreShape:
    """Architecture of a member's core (the paper: width 512, bottleneck 256, 4 residual blocks)."""

    in_channels: int
    width: int = 512
    bottleneck: int = 256
    residual_blocks: int = 4

    @classmethod
    def from_config(cls, ensemble: Mapping[str, Any], in_channels: int) -> CoreShape:
        """The core of the config's ``ensemble`` section on features of ``in_channels`` channels."""
        return cls(in_channels, ensemble["width"], ensemble["bottleneck"], ensemble["residual_blocks"])

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def separable_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 depthwise then 1x1 pointwise convolution, BatchNorm, ReLU."""
    return _conv_bn_relu(
        nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        ),
        out_channels,
    )


class ResidualBlock(nn.Module):
    """Two separable 3x3 convolutions with an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(separable_conv(channels, channels), separable_conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EnsembleCore(nn.Module):
    """Backbone features (C x h x w) -> the shared embedding (width x h/2 x w/2)."""

    def __init__(self, shape: CoreShape) -> None:
        super().__init__()
        self.shape = shape
        self.layers = nn.Sequential(
            _conv_bn_relu(nn.Conv2d(shape.in_channels, shape.width, 1, bias=False), shape.width),
            separable_conv(shape.width, shape.bottleneck, stride=2),
            *[ResidualBlock(shape.bottleneck) for _ in range(shape.residual_blocks)],
            _conv_bn_relu(nn.Conv2d(shape.bottleneck, shape.width, 1, bias=False), shape.width),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class FactorisedReadout(nn.Module):
    """A 1x1 'mixing' convolution to the session's neurons, then each neuron's own spatial pooling."""

    def __init__(self, width: int, n_neurons: int, height: int, width_px: int) -> None:
        super().__init__()
        self.mixing = nn.Conv2d(width, n_neurons, 1, bias=False)
        self.spatial = nn.Parameter(torch.full((n_neurons, height, width_px), 1.0 / (height * width_px)))
        self.bias = nn.Parameter(torch.zeros(n_neurons))
        nn.init.normal_(self.mixing.weight, std=1.0 / width)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        mixed = self.mixing(embedding)
        return torch.einsum("bnyx,nyx->bn", mixed, self.spatial) + self.bias


class Member(nn.Module):
    """One ensemble member: the shared core and one readout per session."""

    def __init__(self, shape: CoreShape, neurons_per_session: Mapping[str, int], embedding_hw: tuple[int, int]) -> None:
        super().__init__()
        self.core = EnsembleCore(shape)
        self.readouts = nn.ModuleDict(
            {session: FactorisedReadout(shape.width, n, *embedding_hw) for session, n in neurons_per_session.items()}
        )

    def forward(self, features: torch.Tensor, session: str) -> torch.Tensor:
        return self.readouts[session](self.core(features))


def embedding_size(feature_hw: tuple[int, int]) -> tuple[int, int]:
    """Spatial size of the embedding: the stride-2 separable convolution halves (rounding up) each side."""
    return tuple((side + 1) // 2 for side in feature_hw)  # type: ignore[return-value]


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def to_device(features: torch.Tensor, device: str) -> torch.Tensor:
    features = features.to(device, dtype=torch.float32, non_blocking=True)
    return features.contiguous(memory_format=torch.channels_last) if device.startswith("cuda") else features


def autocast_for(device: str) -> torch.autocast:
    """bfloat16 mixed precision on CUDA; plain float32 on the CPU."""
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda")


EMBED_BATCH = 256  # features embedded at once


def embed(member: Member, features: torch.Tensor, device: str, batch_size: int = EMBED_BATCH) -> torch.Tensor:
    """The core's embedding of cached features, in eval mode, as float32 on the CPU."""
    member.eval()
    chunks = []
    with torch.inference_mode(), autocast_for(device):
        for start in range(0, features.shape[0], batch_size):
            batch = to_device(features[start : start + batch_size], device)
            chunks.append(member.core(batch).float().cpu())
    return torch.cat(chunks)
