"""torchvision's ImageNet ResNet50 as a `Backbone` (optional: needs torchvision and a weights file on disk)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from compactcortex.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone, count_parameters, strided

# torchvision's ResNet50 weights files (torchvision.models.ResNet50_Weights, checked with torchvision 0.26). V1, the
# original training recipe, is closest to the ResNet50 of the paper, so it is the default; pass V2's file (the newer
# recipe) as weights_path to use that instead.
RESNET50_WEIGHTS_V1 = "resnet50-0676ba61.pth"
RESNET50_WEIGHTS_V2 = "resnet50-11ad3fa6.pth"
RESNET50_LAYERS = ("layer1", "layer2", "layer3", "layer4")
RESNET50_CHANNELS = {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}
RESNET50_STRIDES = {"layer1": (2, 2), "layer2": (2, 2, 2), "layer3": (2, 2, 2, 2), "layer4": (2, 2, 2, 2, 2)}


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
        size = strided(input_size, RESNET50_STRIDES[layer])
        return RESNET50_CHANNELS[layer], size, size

    def n_parameters(self, layer: str) -> int:
        (layer,) = self.check_layers([layer])
        used = self.layers[: self.layers.index(layer) + 1]
        return count_parameters([self.model.conv1, self.model.bn1, *(getattr(self.model, name) for name in used)])

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Runs only as far as the deepest requested layer."""
        model = self.model
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        found = {}
        for name in self.layers[: max(self.layers.index(layer) for layer in layers) + 1]:
            x = getattr(model, name)(x)
            found[name] = x
        return {layer: found[layer] for layer in layers}
