"""The interface every backbone implements (`Backbone`: layers, shapes, preprocessing, batched extraction) and
the helpers they share."""

from __future__ import annotations

import contextlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compactcortex.progress import Progress

log = logging.getLogger(__name__)

# ImageNet statistics in 0..255 units (torchvision's normalisation).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (n, height, width, 3); got {images.dtype} {images.shape}")
    return images


def strided(size: int, strides: Sequence[int]) -> int:
    """Spatial size after convolutions with 'same'-like padding: each stride s maps n to ceil(n / s)."""
    for stride in strides:
        size = math.ceil(size / stride)
    return size


def count_parameters(modules: Sequence[nn.Module]) -> int:
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
        (in bfloat16 on CUDA where `cuda_autocast`); with `progress`, progress lines in the log (`progress`)."""
        layers = self.check_layers(layers)
        images = _check_images(images)
        if batch_size < 1 or input_size < 1:
            raise ValueError(f"batch_size and input_size must be positive; got {batch_size}, {input_size}")
        torch_device = torch.device(device)
        cuda = torch_device.type == "cuda"
        found = {layer: np.empty((len(images), *self.feature_shape(layer, input_size)), np.float32) for layer in layers}
        with _on_device(self.network, torch_device), torch.inference_mode():
            reporter = Progress(f"{self.name} features", len(images), "image", logger=log) if progress else None
            for start in range(0, len(images), batch_size):
                x = self.preprocess(images[start : start + batch_size], input_size, torch_device)
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and self.cuda_autocast):
                    features = self._features(x, layers)
                for layer in layers:
                    # straight into the result (converting dtype and layout on the way): no temporary copy
                    torch.from_numpy(found[layer][start : start + len(x)]).copy_(features[layer])
                if reporter is not None:
                    reporter.update(start + len(x))
        return found
