"""Distillation of a teacher into a compact student (docs/method.md section 4).

The teacher's (z-scored) labels on an image pool are the targets; the student is trained by MSE with Adam (lr 1e-4,
batch 64 in the paper), its depthwise kernels lightly Gaussian-smoothed every few steps. The pool is read by index,
batch by batch (``stream``): its size never reaches memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compactcortex.compact.stream import BatchSampler, ImageArray, LabelArray, PoolData, RangeBatches
from compactcortex.models.compact import CompactModel, predict, smooth_depthwise_kernels_
from compactcortex.models.ensemble import autocast_for
from compactcortex.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class DistillSettings:
    """Training settings. ``steps`` counts Adam updates; batches walk the pool's training images epoch by epoch
    (``stream.BatchSampler``), every student of a job on the same batches.

    ``recalibrate_batchnorm``: after training, set BatchNorm's running statistics to those of the first
    ``calibration_images`` training images (one pass, no gradient), as the running averages lag the weights when the
    learning rate is large. ``cosine_decay``: anneal the learning rate to 0 over the steps (the paper keeps it
    constant; short demos converge better annealed).
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
    calibration_images: int = 10000

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.smoothing_every < 1 or self.calibration_images < 2:
            raise ValueError("steps, batch_size, smoothing_every and calibration_images (>= 2) must be positive")
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


def output_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each output's mean squared error over the batch (n_outputs,)."""
    return ((predictions - targets) ** 2).mean(dim=0)


def per_output_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the batch, summed over outputs: each output's gradient is exactly its own MSE's,
    so N students trained as one network (or one shared model) get the updates they would get one by one."""
    return output_mse(predictions, targets).sum()


def network_input(model: CompactModel, images: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    """A batch as the students take it: preprocessed (unless it already is), on ``device``, channels-last (twice as
    fast on a CPU for these small convolutions, and the layout GPUs prefer)."""
    x = images if isinstance(images, torch.Tensor) and images.is_floating_point() else model.preprocess(images)
    return x.to(device).contiguous(memory_format=torch.channels_last)


def distill(
    student: CompactModel,
    images: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    settings: DistillSettings | None = None,
) -> dict[str, Any]:
    """Train ``student`` in place on images held in memory (uint8 (n, H, W, 3), or already preprocessed) and their
    targets (n, n_outputs): every image a training image. Returns its history (``distill_pool``)."""
    n = images.shape[0]
    y = _as_targets(targets, n, student.n_outputs)
    data = PoolData(ImageArray(images), LabelArray(y.T, np.arange(y.shape[1]).astype(str)), n, heldout=0, block=n)
    return distill_pool([student], data, settings or DistillSettings())[0]


def distill_pool(
    students: Sequence[CompactModel],
    data: PoolData,
    settings: DistillSettings,
    *,
    name: str = "distill",
) -> list[dict[str, Any]]:
    """Train each student in place by MSE on its columns of the pool's targets (a student with k outputs takes the
    next k neurons), all on the same batches, step by step: each batch is regenerated once for all of them, and
    each student gets exactly the updates it would get alone. Returns a history per student (loss per step, per
    epoch); the students are left in eval mode.

    Progress is logged under ``name`` (``progress``): each step window's rate and every neuron's mean loss over the
    window (the mean over neurons, the lowest and the highest, with their neurons)."""
    torch.manual_seed(settings.seed)
    if sum(s.n_outputs for s in students) != len(data.neuron_ids):
        raise ValueError(f"{len(data.neuron_ids)} neurons' labels for students of {[s.n_outputs for s in students]}")
    bounds = np.cumsum([0] + [s.n_outputs for s in students])
    optimizers, schedules = [], []
    for student in students:
        student.to(settings.device, memory_format=torch.channels_last).train()
        optimizer = torch.optim.Adam(student.parameters(), lr=settings.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: 0.5 * (1 + np.cos(np.pi * step / settings.steps)) if settings.cosine_decay else 1.0,
        )
        optimizers.append(optimizer)
        schedules.append(schedule)
    sampler = BatchSampler(data.n_train, settings.batch_size, settings.seed, data.block)
    losses: list[list[float]] = [[] for _ in students]
    progress = Progress(name, settings.steps, "step", logger=log)
    window: list[torch.Tensor] = []  # each student's summed per-output losses since the last progress line
    for step, (indices, images) in enumerate(data.image_batches(sampler, settings.steps), start=1):
        x = network_input(students[0], images, settings.device)
        y = torch.as_tensor(data.targets_of(indices), dtype=x.dtype, device=x.device)
        for k, (student, optimizer, schedule) in enumerate(zip(students, optimizers, schedules, strict=True)):
            with autocast_for(settings.device):  # bf16 on a GPU, as the ensemble; plain float32 on a CPU
                predictions = student(x)
            errors = output_mse(predictions.to(y.dtype), y[:, bounds[k] : bounds[k + 1]])
            loss = errors.sum()  # per_output_mse
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses[k].append(float(loss.detach()))
            if len(window) <= k:
                window.append(errors.detach().clone())
            else:
                window[k] += errors.detach()
            if settings.smoothing_sigma > 0 and step % settings.smoothing_every == 0:
                smooth_depthwise_kernels_(student, settings.smoothing_sigma)
        if progress.update(step, lambda: _window_loss(window, progress, data.neuron_ids)):
            window.clear()
    if settings.recalibrate_batchnorm:
        calibration = RangeBatches(0, min(settings.calibration_images, data.n_train), settings.batch_size)
        batches = data.image_batches(calibration, len(calibration))
        recalibrate_batchnorm_(students, (network_input(students[0], images, settings.device) for _, images in batches))
    per_epoch = sampler.batches_per_epoch
    histories = []
    for student, loss in zip(students, losses, strict=True):
        student.eval()
        epoch_loss = [float(np.mean(loss[i : i + per_epoch])) for i in range(0, len(loss), per_epoch)]
        histories.append({"loss": loss, "epoch_loss": epoch_loss, "steps": len(loss), "n_images": data.n_train})
    return histories


def _window_loss(window: Sequence[torch.Tensor], progress: Progress, neuron_ids: np.ndarray) -> str:
    """A progress line's loss: each neuron's mean loss over the steps since the previous line (``window``: the
    students' summed per-output losses), and for several the mean over neurons, the lowest and the highest."""
    steps = progress.done - progress.last_done
    per_neuron = torch.cat([w.reshape(-1) for w in window]).double().cpu().numpy() / max(steps, 1)
    if per_neuron.size == 1:
        return f"loss {per_neuron[0]:.4g}"
    low, high = int(np.argmin(per_neuron)), int(np.argmax(per_neuron))
    return (
        f"loss {per_neuron.mean():.4g} (mean of {per_neuron.size} students; "
        f"min {per_neuron[low]:.4g} {neuron_ids[low]}, max {per_neuron[high]:.4g} {neuron_ids[high]})"
    )


@torch.no_grad()
def recalibrate_batchnorm_(
    models: CompactModel | Sequence[CompactModel], batches: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 256
) -> None:
    """Set every BatchNorm's running mean and variance to their averages over the batches of preprocessed images
    (a tensor is cut into batches of ``batch_size``), in place: a cumulative moving average (momentum None), in
    order; a batch of one image is skipped."""
    models = [models] if isinstance(models, CompactModel) else list(models)
    if isinstance(batches, torch.Tensor):
        batches = (batches[start : start + batch_size] for start in range(0, batches.shape[0], batch_size))
    states = []
    for model in models:
        batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        states.append((model, model.training, batchnorms, [m.momentum for m in batchnorms]))
        for m in batchnorms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
    try:
        for x in batches:
            if x.shape[0] >= 2:
                for model in models:
                    model(x)
    finally:
        for model, was_training, batchnorms, momenta in states:
            for m, momentum in zip(batchnorms, momenta, strict=True):
                m.momentum = momentum
            model.train(was_training)


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
