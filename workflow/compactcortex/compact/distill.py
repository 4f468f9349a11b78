"""Distillation of a teacher into a compact student (docs/method.md section 4).

The teacher's (z-scored) labels on an image pool are the targets; the student is trained by MSE with Adam (lr 1e-4,
batch 64 in the paper), its depthwise kernels lightly Gaussian-smoothed every few steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compactcortex.models.compact import CompactModel, predict, smooth_depthwise_kernels_


@dataclass
class DistillSettings:
    """Training settings. ``steps`` counts Adam updates; batches walk seeded permutations of the pool (epochs).

    ``recalibrate_batchnorm``: after training, set BatchNorm's running statistics to the pool's (one pass, no
    gradient), as the running averages lag the weights when the learning rate is large. ``cosine_decay``: anneal the
    learning rate to 0 over the steps (the paper keeps it constant; short demos converge better annealed).
    """

    steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-4
    smoothing_sigma: float = 0.5
    smoothing_every: int = 100
    seed: int = 0
    device: str = "cpu"
    recalibrate_batchnorm: bool = True
    cosine_decay: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.smoothing_every < 1:
            raise ValueError("steps, batch_size and smoothing_every must be positive")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.smoothing_sigma >= 0:
            raise ValueError(f"smoothing_sigma must be >= 0, got {self.smoothing_sigma}")


def _as_targets(targets: np.ndarray, n_images: int, n_outputs: int) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape != (n_images, n_outputs):
        raise ValueError(f"targets must be ({n_images}, {n_outputs}), got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("targets must be finite")
    return y


def per_output_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the batch, summed over outputs: each output's gradient is exactly its own MSE's,
    so N students trained as one network (or one shared model) get the updates they would get one by one."""
    return ((predictions - targets) ** 2).mean(dim=0).sum()


def _batch_order(n_images: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Index batches for ``steps`` updates: consecutive slices of a fresh seeded permutation each epoch."""
    rng = np.random.default_rng(seed)
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        order = rng.permutation(n_images)
        for start in range(0, n_images, batch_size):
            batches.append(order[start : start + batch_size])
            if len(batches) == steps:
                break
    return batches


def distill(
    student: CompactModel,
    images: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    settings: DistillSettings | None = None,
) -> dict[str, Any]:
    """Train ``student`` in place on (images, targets) by MSE; returns the history (loss per step, per epoch).

    ``images``: uint8 (n, H, W, 3), or already preprocessed (a float tensor); ``targets``: (n, n_outputs), the
    teacher's z-scored labels. The student is left in eval mode.
    """
    settings = settings or DistillSettings()
    torch.manual_seed(settings.seed)
    # channels-last: twice as fast on CPU for these small convolutions (and the layout GPUs prefer)
    student.to(settings.device, memory_format=torch.channels_last)
    x = images if isinstance(images, torch.Tensor) and images.is_floating_point() else student.preprocess(images)
    x = x.to(settings.device).contiguous(memory_format=torch.channels_last)  # preprocessed once, not per step
    y = torch.as_tensor(_as_targets(targets, x.shape[0], student.n_outputs), dtype=x.dtype, device=x.device)
    if x.shape[0] < 2:
        raise ValueError("distillation needs at least 2 images (BatchNorm in training mode)")
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + np.cos(np.pi * step / settings.steps)) if settings.cosine_decay else 1.0
    )
    batches = _batch_order(x.shape[0], settings.batch_size, settings.steps, settings.seed)
    student.train()
    losses: list[float] = []
    for step, index in enumerate(batches, start=1):
        if index.size < 2:  # a lone last image of an epoch: BatchNorm cannot train on it
            index = np.concatenate([index, batches[0][:1]])
        batch = torch.as_tensor(index, device=x.device)
        loss = per_output_mse(student(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if settings.smoothing_sigma > 0 and step % settings.smoothing_every == 0:
            smooth_depthwise_kernels_(student, settings.smoothing_sigma)
    if settings.recalibrate_batchnorm:
        recalibrate_batchnorm_(student, x, settings.batch_size)
    student.eval()
    per_epoch = max(1, -(-x.shape[0] // settings.batch_size))
    epoch_loss = [float(np.mean(losses[i : i + per_epoch])) for i in range(0, len(losses), per_epoch)]
    return {"loss": losses, "epoch_loss": epoch_loss, "steps": len(losses), "n_images": int(x.shape[0])}


@torch.no_grad()
def recalibrate_batchnorm_(model: CompactModel, x: torch.Tensor, batch_size: int = 256) -> CompactModel:
    """Set every BatchNorm's running mean and variance to their averages over ``x`` (preprocessed), in place.

    The averages are taken over batches of ``batch_size``, in order (cumulative moving average, momentum None).
    """
    was_training = model.training
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in batchnorms]
    for m in batchnorms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for start in range(0, x.shape[0], batch_size):
            if x.shape[0] - start >= 2:
                model(x[start : start + batch_size])
    finally:
        for m, momentum in zip(batchnorms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return model


def squared_correlation(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation per column; 0 where either column is constant (the correlation is undefined)."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    p = p[:, None] if p.ndim == 1 else p
    t = t[:, None] if t.ndim == 1 else t
    if p.shape != t.shape:
        raise ValueError(f"predictions {p.shape} and targets {t.shape} differ")
    return np.array([_squared_correlation_1d(p[:, column], t[:, column]) for column in range(p.shape[1])])


def _squared_correlation_1d(p: np.ndarray, t: np.ndarray) -> float:
    """One column, copied contiguous: numpy sums a strided column in another order than a contiguous one, so a
    column's r^2 would otherwise depend on how many columns share its array."""
    p, t = np.array(p, dtype=np.float64), np.array(t, dtype=np.float64)
    p, t = p - p.mean(), t - t.mean()
    denominator = np.sqrt((p**2).sum() * (t**2).sum())
    return float((p * t).sum() / denominator) ** 2 if denominator > 0 else 0.0


def fidelity_r2(
    student: CompactModel, images: np.ndarray | torch.Tensor, targets: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Squared Pearson correlation per output between the student's predictions and ``targets`` (held-out images)."""
    predictions = predict(student, images, batch_size)
    return squared_correlation(predictions, _as_targets(targets, predictions.shape[0], student.n_outputs))
