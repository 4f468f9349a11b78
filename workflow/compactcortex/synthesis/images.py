"""Images that drive a compact model most or least, and adversarial images (docs/method.md section 5).

Every function works on a ``StudentBank`` of the neurons' compact models, each neuron on its own images (input
(batch, N, 3, S, S)); a single model is a bank of one. Images are float pixels in 0..255 at the stimulus size (the
session's images), so what is synthesised can be shown to the neuron as it is: the bank's ``prepare`` resizes them
to the models' size differentiably.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from compactcortex.models.compact import CompactModel, gaussian_kernel_1d
from compactcortex.models.compact_bank import StudentBank
from compactcortex.progress import Progress

PIXEL_MAX = 255.0
NORMS = ("linf", "l2")


@dataclass(frozen=True)
class SynthesisSettings:
    """The paper's gradient procedure: white noise, RMS-normalised smoothed gradient steps, clipping, periodic
    smoothing of the image, the best image seen kept."""

    steps: int = 1000
    step_size: float = 10.0  # pixels per step, for an RMS-normalised gradient
    gradient_sigma: float = 1.0  # pixels
    smooth_every: int = 50
    smooth_sigma: float = 0.5  # pixels

    def __post_init__(self) -> None:
        if self.steps < 1 or self.smooth_every < 1:
            raise ValueError(f"steps and smooth_every must be at least 1, got {self.steps} and {self.smooth_every}")
        if self.step_size <= 0 or min(self.gradient_sigma, self.smooth_sigma) < 0:
            raise ValueError("step_size must be positive, the sigmas non-negative")


@dataclass(frozen=True)
class AdversarialSettings:
    """A perturbation within ``budget`` pixels (L-infinity: per pixel; L2: of the whole image) found by projected
    gradient steps."""

    norm: str = "linf"
    budget: float = 8.0
    steps: int = 50

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.budget <= 0 or self.steps < 1:
            raise ValueError(f"budget must be positive and steps at least 1, got {self.budget} and {self.steps}")


def as_bank(models: Sequence[CompactModel] | StudentBank) -> StudentBank:
    """The models as one bank in eval mode, gradients off for its weights (only the images are optimised)."""
    bank = models if isinstance(models, StudentBank) else StudentBank.from_students(list(models))
    bank.eval()
    for parameter in bank.parameters():
        parameter.requires_grad_(False)
    return bank


def bank_responses(bank: StudentBank, pixels: torch.Tensor) -> torch.Tensor:
    """(batch, N, 3, H, W) float pixels -> (batch, N): neuron i's model on its own images."""
    batch, n = pixels.shape[:2]
    x = bank.prepare(pixels.flatten(0, 1)).unflatten(0, (batch, n))
    return bank(x)


def blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (..., C, H, W) over the last two axes, edges reflected; sigma 0 returns the input."""
    kernel = gaussian_kernel_1d(sigma, pixels.dtype).to(pixels.device)
    if kernel.numel() == 1:
        return pixels
    shape = pixels.shape
    x = pixels.reshape(-1, 1, *shape[-2:])
    radius = kernel.numel() // 2
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.reshape(shape)


def _rms_normalised(gradient: torch.Tensor) -> torch.Tensor:
    """Each image's gradient divided by its root mean square (zero gradients stay zero)."""
    rms = gradient.pow(2).mean(dim=(-3, -2, -1), keepdim=True).sqrt()
    return gradient / rms.clamp_min(1e-12)


def white_noise(rng: np.random.Generator, n_images: int, image_size: int, std: float) -> np.ndarray:
    """Starting images (n_images, 3, S, S): Gaussian pixel noise about mid-grey, clipped to 0..255."""
    return np.clip(rng.normal(PIXEL_MAX / 2, std, (n_images, 3, image_size, image_size)), 0, PIXEL_MAX)


def synthesize(
    bank: StudentBank,
    start: torch.Tensor,
    direction: torch.Tensor,
    settings: SynthesisSettings,
    progress: Progress | None = None,
    label: str = "",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images that drive each neuron's model up (``direction`` +1) or down (-1) as far as the procedure gets.

    ``start``: (n_images, N, 3, H, W) pixels (``white_noise``, one draw per neuron); ``direction`` (n_images,): image
    j of every neuron is pushed that way (a neuron's maximizing and minimizing images share one batch). Returns the
    best images seen (n_images, N, 3, H, W), float in 0..255, and their responses (n_images, N). Each step advances
    ``progress``, whose lines name ``label`` and the best responses so far (``objective_details``).
    """
    n_images, n = start.shape[:2]
    if n != bank.n_outputs or direction.shape != (n_images,):
        raise ValueError(f"start {tuple(start.shape)} and direction {tuple(direction.shape)} do not fit {n} models")
    parameter = next(bank.parameters())
    pixels = start.detach().to(device=parameter.device, dtype=parameter.dtype, copy=True)  # the caller's stays
    dtype, device = parameter.dtype, parameter.device
    sign = direction.to(device=device, dtype=dtype).view(-1, 1)
    best = pixels.clone()
    best_objective = torch.full((n_images, n), -math.inf, dtype=dtype, device=device)
    for step in range(settings.steps + 1):
        pixels.requires_grad_(True)
        objective = sign * bank_responses(bank, pixels)
        with torch.no_grad():
            better = objective > best_objective
            best_objective = torch.where(better, objective, best_objective)
            best = torch.where(better.view(n_images, n, 1, 1, 1), pixels, best)
        if step == settings.steps:
            break
        (gradient,) = torch.autograd.grad(objective.sum(), pixels)
        with torch.no_grad():
            gradient = _rms_normalised(blur(gradient, settings.gradient_sigma))
            pixels = (pixels + settings.step_size * gradient).clamp(0, PIXEL_MAX)
            if (step + 1) % settings.smooth_every == 0:
                pixels = blur(pixels, settings.smooth_sigma)
        if progress is not None:
            progress.advance(1, lambda so_far=best_objective: objective_details(f"{label} best", sign * so_far, sign))
    return best.detach(), (sign * best_objective).detach()


def objective_details(label: str, responses: torch.Tensor, sign: torch.Tensor, images: str = "starts") -> str:
    """A progress line's objective: ``label``, then the responses (n_images, N) of the images pushed up and of
    those pushed down (``sign`` +1 or -1 per image), each the mean over its images and the neurons, with the range
    of the images' means over the neurons."""
    responses = responses.detach().double().cpu()
    up = sign.detach().cpu().view(-1) > 0
    parts = []
    for name, rows in (("up", up), ("down", ~up)):
        if rows.any():
            per_image = responses[rows].mean(dim=1)
            parts.append(f"{name} {per_image.mean():.4g} ({images} {per_image.min():.4g}..{per_image.max():.4g})")
    return f"{label} response {', '.join(parts)} over {responses.shape[1]} neuron(s)"


def _project(delta: torch.Tensor, norm: str, budget: float) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-budget, budget)
    length = delta.flatten(-3).norm(dim=-1).view(*delta.shape[:-3], 1, 1, 1)
    return delta * (budget / length.clamp_min(budget))


def adversarial(
    bank: StudentBank,
    sources: torch.Tensor,
    direction: torch.Tensor,
    settings: AdversarialSettings,
    progress: Progress | None = None,
    label: str = "",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Perturb ``sources`` (n_images, N, 3, H, W; integer pixel values) within the budget so that each neuron's model
    responds as far up (``direction`` +1) or down (-1) as projected gradient steps get.

    Returns uint8-valued images (n_images, N, 3, H, W), rounded and still within the budget, and their responses.
    Each step advances ``progress``, whose lines name ``label`` and the current responses.
    """
    n_images, n = sources.shape[:2]
    if direction.shape != (n_images,):
        raise ValueError(f"direction must be ({n_images},), got {tuple(direction.shape)}")
    parameter = next(bank.parameters())
    sources = sources.detach().to(device=parameter.device, dtype=parameter.dtype)
    sign = direction.to(sources).view(-1, 1)
    # L-infinity: the classic step of 2.5 budget / steps per pixel; L2: that length for the whole image
    step_size = 2.5 * settings.budget / settings.steps
    delta = torch.zeros_like(sources)
    for _ in range(settings.steps):
        delta.requires_grad_(True)
        objective = sign * bank_responses(bank, sources + delta)
        (gradient,) = torch.autograd.grad(objective.sum(), delta)
        with torch.no_grad():
            if settings.norm == "linf":
                step = gradient.sign()
            else:
                step = gradient / gradient.flatten(-3).norm(dim=-1).clamp_min(1e-12).view(n_images, n, 1, 1, 1)
            delta = _project(delta + step_size * step, settings.norm, settings.budget)
            delta = (sources + delta).clamp(0, PIXEL_MAX) - sources
        if progress is not None:
            progress.advance(1, lambda now=objective: objective_details(label, sign * now, sign, "sources"))
    images = _rounded_within_budget(sources, delta, settings)
    with torch.no_grad():
        responses = bank_responses(bank, images)
    return images, responses


def _rounded_within_budget(sources: torch.Tensor, delta: torch.Tensor, settings: AdversarialSettings) -> torch.Tensor:
    """sources + delta rounded to pixel values; an L2 perturbation is shrunk until the rounded one fits."""
    with torch.no_grad():
        scale = torch.ones(*delta.shape[:2], 1, 1, 1, dtype=delta.dtype, device=delta.device)
        for _ in range(100):
            images = (sources + scale * delta).round().clamp(0, PIXEL_MAX)
            size = perturbation_size(images, sources, settings.norm)
            over = (size > settings.budget).view_as(scale)
            if not over.any():
                return images
            scale = torch.where(over, scale * 0.97, scale)
        return sources.clone()  # (unreachable for any budget >= 1 pixel) no perturbation is within budget


def perturbation_size(images: torch.Tensor, sources: torch.Tensor, norm: str) -> torch.Tensor:
    """The perturbation's size per image, in pixels: its largest absolute value (linf) or its length (l2)."""
    delta = (images - sources).flatten(-3)
    return delta.abs().amax(dim=-1) if norm == "linf" else delta.norm(dim=-1)
