"""The `pixels` backbone: no network, the resized and normalised image itself."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from compactcortex.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone


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
