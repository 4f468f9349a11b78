"""The compact model (the student): five small convolutional stages and a spatial readout (docs/method.md section 4).

Module names follow the published state dicts of Cowley et al. 2023 (``layers.layer0_conv``,
``layers.layerK_conv_depth``, ``layers.layerK_conv_point``, ``layers.layerK_bn``, ``layers.Beta``), so a published
model loads with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_LAYERS = 5
KERNEL_SIZE = 5
IMAGE_SIZE = 112
DATASET_MEANS = (116.222, 109.270, 100.381)
# BatchNorm epsilon. The published models were trained in Keras (default epsilon 1e-3), but their PyTorch port, the
# state dicts we load, uses PyTorch's default 1e-5: only 1e-5 reproduces reference_predictions.npz (1e-3 is off by
# more than 1 on some images, as some running variances are tiny).
BN_EPS = 1e-5
# Keras 'same' padding of a 5x5 kernel at stride 2 on an even-sized input pads 1 before and 2 after; the published
# PyTorch port pads 3 after, which gives the same output (the last padded row/column is never reached).
STRIDE2_PADDING = (1, 3, 1, 3)  # F.pad order: left, right, top, bottom
STRIDES = (1, 2, 2, 1, 1)


class CompactModel(nn.Module):
    """The paper's compact model of one neuron (or ``n_outputs`` neurons, for a shared model).

    Input: (batch, 3, H, W) pixels in 0..255 minus the per-channel means, channels first (see ``preprocess``).
    Output: (batch, n_outputs).
    """

    def __init__(
        self,
        filters: Sequence[int],
        image_size: int = IMAGE_SIZE,
        n_outputs: int = 1,
        means: Sequence[float] = DATASET_MEANS,
        bn_eps: float = BN_EPS,
    ) -> None:
        super().__init__()
        self._filters = _check_filters(filters)
        if image_size <= 0 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4 (two stride-2 stages), got {image_size}")
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be at least 1, got {n_outputs}")
        if len(means) != 3:
            raise ValueError(f"means must hold one value per RGB channel, got {len(means)}")
        self.image_size = int(image_size)
        self.n_outputs = int(n_outputs)
        self.bn_eps = float(bn_eps)
        self._means = tuple(float(m) for m in means)
        # Follows the module's device and dtype; not persistent, as the published state dicts hold no means (they
        # travel in config()). preprocess subtracts the exact values in float64 before casting.
        self.register_buffer("means", torch.tensor(self._means), persistent=False)
        self.layers = _build_layers(self._filters, self.map_size, self.n_outputs, self.bn_eps)

    @property
    def filters(self) -> tuple[int, ...]:
        return self._filters

    @property
    def map_size(self) -> int:
        """Side of the last feature map (image_size / 4)."""
        return self.image_size // 4

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five stages' outputs (after BatchNorm and ReLU), channels first."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"expected input (batch, 3, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        layers = self.layers
        x = F.relu(layers["layer0_bn"](layers["layer0_conv"](x)))
        outputs = [x]
        for k in range(1, N_LAYERS):
            if STRIDES[k] == 2:
                x = F.pad(x, STRIDE2_PADDING)
            x = layers[f"layer{k}_conv_depth"](x)
            x = F.relu(layers[f"layer{k}_bn"](layers[f"layer{k}_conv_point"](x)))
            outputs.append(x)
        return outputs

    def readout(self, last_map: torch.Tensor) -> torch.Tensor:
        """Linear readout over the last map flattened channels last, i.e. in (row, column, channel) order."""
        return self.layers["Beta"](last_map.permute(0, 2, 3, 1).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.layer_outputs(x)[-1])

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 images (n, H, W, 3) -> the network's input (n, 3, S, S), mean-subtracted, in the model's dtype.

        Square images of another size are first resized to the model's ``image_size`` (S), anti-aliased bilinear
        in float64, so a model distilled at a lower resolution takes the session's images as they are.
        """
        images = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        square = images.ndim == 4 and images.shape[1] == images.shape[2]
        if images.dtype != torch.uint8 or not square or images.shape[-1] != 3:
            raise ValueError(f"expected square uint8 images (n, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        x = images.to(device=self.means.device, dtype=torch.float64).permute(0, 3, 1, 2)
        return self.prepare(x).to(self.means.dtype).contiguous()

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        """Float pixels (n, 3, H, W) in 0..255, square -> the network's input, differentiably (image synthesis
        takes gradients through it): resized to ``image_size`` (anti-aliased when shrinking), minus the means.
        Computes in the pixels' dtype."""
        return prepare_pixels(pixels, self.image_size, self._means)

    def n_parameters(self) -> int:
        """All trainable parameters (the count the paper reports)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild the architecture (not the weights)."""
        return {
            "filters": list(self.filters),
            "image_size": self.image_size,
            "n_outputs": self.n_outputs,
            "means": list(self._means),
            "bn_eps": self.bn_eps,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CompactModel:
        return cls(**config)


def prepare_pixels(pixels: torch.Tensor, image_size: int, means: Sequence[float]) -> torch.Tensor:
    """See ``CompactModel.prepare``."""
    if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[2] != pixels.shape[3]:
        raise ValueError(f"expected square float pixels (n, 3, H, W), got {tuple(pixels.shape)}")
    x = pixels
    if x.shape[-1] != image_size:
        shrink = x.shape[-1] > image_size
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=shrink)
    return x - torch.tensor(means, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def _check_filters(filters: Sequence[int]) -> tuple[int, ...]:
    values = tuple(int(f) for f in filters)
    if len(values) != N_LAYERS or any(f < 1 for f in values) or values != tuple(filters):
        raise ValueError(f"filters must be {N_LAYERS} positive integers, got {list(filters)}")
    return values


def _build_layers(filters: tuple[int, ...], map_size: int, n_outputs: int, bn_eps: float) -> nn.ModuleDict:
    layers: dict[str, nn.Module] = {
        "layer0_conv": nn.Conv2d(3, filters[0], KERNEL_SIZE, padding=KERNEL_SIZE // 2),
        "layer0_bn": nn.BatchNorm2d(filters[0], eps=bn_eps),
    }
    for k in range(1, N_LAYERS):
        f_in, f_out = filters[k - 1], filters[k]
        padding = 0 if STRIDES[k] == 2 else KERNEL_SIZE // 2  # stride 2: padded explicitly in layer_outputs
        layers[f"layer{k}_conv_depth"] = nn.Conv2d(
            f_in, f_in, KERNEL_SIZE, stride=STRIDES[k], padding=padding, groups=f_in, bias=False
        )
        layers[f"layer{k}_conv_point"] = nn.Conv2d(f_in, f_out, 1)
        layers[f"layer{k}_bn"] = nn.BatchNorm2d(f_out, eps=bn_eps)
    layers["Beta"] = nn.Linear(map_size * map_size * filters[-1], n_outputs)
    return nn.ModuleDict(layers)


def count_parameters(filters: Sequence[int], image_size: int = IMAGE_SIZE, n_outputs: int = 1) -> int:
    """The trainable-parameter count of a compact model, in closed form (BatchNorm: scale and shift only)."""
    f = _check_filters(filters)
    k2 = KERNEL_SIZE * KERNEL_SIZE
    total = 3 * k2 * f[0] + f[0] + 2 * f[0]
    for i in range(1, N_LAYERS):
        total += k2 * f[i - 1] + f[i - 1] * f[i] + f[i] + 2 * f[i]
    return total + ((image_size // 4) ** 2 * f[-1] + 1) * n_outputs


def gaussian_kernel_1d(sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A normalised Gaussian over [-r, r], r = ceil(3 sigma) (at least 1); sigma = 0 gives the delta [1]."""
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    if sigma == 0:
        return torch.ones(1, dtype=dtype)
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


@torch.no_grad()
def smooth_depthwise_kernels_(model: CompactModel, sigma: float) -> CompactModel:
    """Blur every depthwise 5x5 kernel in place with a Gaussian of ``sigma`` pixels (zero beyond the kernel's edge).

    The paper smooths the depthwise kernels lightly during training, which keeps them spatially smooth. The blur is a
    same-size 2-D convolution of each kernel with a separable Gaussian; sigma = 0 leaves the kernels unchanged.
    """
    g = gaussian_kernel_1d(sigma)
    if g.numel() == 1:
        return model
    radius = g.numel() // 2
    for k in range(1, N_LAYERS):
        weight = model.layers[f"layer{k}_conv_depth"].weight  # (channels, 1, 5, 5)
        gk = g.to(weight.dtype).to(weight.device)
        blurred = F.conv2d(weight, gk.view(1, 1, 1, -1), padding=(0, radius))
        blurred = F.conv2d(blurred, gk.view(1, 1, -1, 1), padding=(radius, 0))
        weight.copy_(blurred)
    return model


@torch.no_grad()
def predict(model: CompactModel, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The model's outputs (n, n_outputs) on uint8 images (or an already preprocessed tensor), eval mode, batched."""
    was_training = model.training
    model.eval()
    try:
        x = images if isinstance(images, torch.Tensor) and images.is_floating_point() else model.preprocess(images)
        device = next(model.parameters()).device  # a preprocessed tensor may live elsewhere (e.g. on the CPU)
        outputs = [model(x[i : i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outputs).double().cpu().numpy()


def initial_student(filters: int, image_size: int, means: Sequence[float], init_seed: int) -> CompactModel:
    """A neuron's student before pruning: ``filters`` in every layer, initialised from ``init_seed`` (the
    compressibility analysis rebuilds it to see what training added)."""
    torch.manual_seed(init_seed)
    return CompactModel([filters] * N_LAYERS, image_size=image_size, means=means)
