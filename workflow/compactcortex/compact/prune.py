"""Layer-by-layer pruning of a compact model (docs/method.md section 4), from the last layer to the first.

Filters of a layer are ranked by the variance (over probe images and positions) of their post-ReLU maps. Layers 0-3
keep the fewest top filters that carry >= ``variance_fraction`` of the layer output's total variance; the last layer
keeps the fewest top filters whose zeroing of the rest leaves the probe fidelity (r^2 to the teacher) >=
``fidelity_fraction`` x the unpruned one. No layer keeps fewer than ``min_filters``. After each layer the model is
rebuilt with only the kept filters, which computes exactly what the original computes with the dropped maps zeroed.

With ``fidelity_guard`` (default on) layers 0-3 also add filters, in variance order, until the probe fidelity stays
>= ``fidelity_fraction`` x the unpruned one: without retraining between layers, the variance criterion alone does
not bound the cumulative loss of fidelity.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compactcortex.compact.distill import fidelity_r2
from compactcortex.models.compact import N_LAYERS, CompactModel

# Rebuilt models sum over fewer channels, so their fidelity can differ from the zeroed model's by rounding.
FIDELITY_TOLERANCE = 1e-9


@dataclass
class PruneSettings:
    """Pruning thresholds (the paper: 90% of variance, 90% of r^2 for the last layer, at least 3 filters)."""

    variance_fraction: float = 0.9
    fidelity_fraction: float = 0.9
    min_filters: int = 3
    fidelity_guard: bool = True
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("variance_fraction", "fidelity_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.min_filters < 1 or self.batch_size < 1:
            raise ValueError("min_filters and batch_size must be positive")


@contextmanager
def zeroed_filters(model: CompactModel, layer: int, kept: Sequence[int]) -> Iterator[CompactModel]:
    """Within the block, layer ``layer``'s maps of the filters not in ``kept`` are zero (after BN, so after ReLU)."""
    bn = model.layers[f"layer{layer}_bn"]
    mask = torch.zeros(bn.num_features, dtype=bn.weight.dtype, device=bn.weight.device)
    mask[list(kept)] = 1
    handle = bn.register_forward_hook(lambda _module, _inputs, output: output * mask.view(1, -1, 1, 1))
    try:
        yield model
    finally:
        handle.remove()


@torch.no_grad()
def filter_variances(model: CompactModel, x: torch.Tensor, layer: int, batch_size: int = 256) -> np.ndarray:
    """Variance of each filter's post-ReLU map of ``layer`` over images and positions (x: preprocessed)."""
    n_filters = model.filters[layer]
    total = torch.zeros(n_filters, dtype=torch.float64)
    total_sq = torch.zeros(n_filters, dtype=torch.float64)
    count = 0
    for start in range(0, x.shape[0], batch_size):
        maps = model.layer_outputs(x[start : start + batch_size])[layer].double().cpu()
        maps = maps.transpose(0, 1).reshape(n_filters, -1)
        total += maps.sum(dim=1)
        total_sq += (maps**2).sum(dim=1)
        count += maps.shape[1]
    mean = total / count
    return (total_sq / count - mean**2).clamp_min(0).numpy()


def count_for_variance(variances: np.ndarray, fraction: float, min_filters: int) -> int:
    """The fewest top-variance filters that carry >= ``fraction`` of the total variance (at least ``min_filters``)."""
    ranked = np.sort(np.asarray(variances, dtype=np.float64))[::-1]
    cumulative = np.cumsum(ranked)
    n = int(np.argmax(cumulative >= fraction * cumulative[-1])) + 1 if cumulative[-1] > 0 else 1
    return min(max(n, min_filters), ranked.size)


def rank_filters(variances: np.ndarray) -> np.ndarray:
    """Filter indices by decreasing variance (ties: lower index first)."""
    return np.argsort(-np.asarray(variances, dtype=np.float64), kind="stable")


def _first_count(counts: Sequence[int], accept: Callable[[int], bool]) -> int:
    """The first count that ``accept`` passes, else the last (keep every filter)."""
    for n in counts:
        if accept(n):
            return n
    return counts[-1]


def _take(tensor: torch.Tensor, index: Sequence[int], dim: int = 0) -> torch.Tensor:
    return tensor.index_select(dim, torch.as_tensor(list(index), dtype=torch.long, device=tensor.device)).clone()


def _check_kept(model: CompactModel, kept: Sequence[Sequence[int]]) -> list[list[int]]:
    if len(kept) != N_LAYERS:
        raise ValueError(f"kept must list {N_LAYERS} layers, got {len(kept)}")
    checked = []
    for k, (indices, n_filters) in enumerate(zip(kept, model.filters, strict=True)):
        values = sorted(int(i) for i in indices)
        if not values or len(set(values)) != len(values) or values[0] < 0 or values[-1] >= n_filters:
            raise ValueError(f"layer {k}: kept filters must be distinct indices in [0, {n_filters}), got {indices}")
        checked.append(values)
    return checked


def _copy_bn(source: torch.nn.BatchNorm2d, target: torch.nn.BatchNorm2d, index: Sequence[int]) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(_take(getattr(source, name), index))
    target.num_batches_tracked.copy_(source.num_batches_tracked)
    target.momentum = source.momentum


@torch.no_grad()
def rebuild_with_filters(model: CompactModel, kept: Sequence[Sequence[int]]) -> CompactModel:
    """A smaller model with only the ``kept`` filters (indices per layer, sorted), computing exactly what ``model``
    computes with the other filters' maps zeroed."""
    kept = _check_kept(model, kept)
    config = model.config() | {"filters": [len(k) for k in kept]}
    parameter = next(model.parameters())
    new = CompactModel.from_config(config).to(dtype=parameter.dtype, device=parameter.device)
    old_layers, new_layers = model.layers, new.layers
    new_layers["layer0_conv"].weight.copy_(_take(old_layers["layer0_conv"].weight, kept[0]))
    new_layers["layer0_conv"].bias.copy_(_take(old_layers["layer0_conv"].bias, kept[0]))
    _copy_bn(old_layers["layer0_bn"], new_layers["layer0_bn"], kept[0])
    for k in range(1, N_LAYERS):
        new_layers[f"layer{k}_conv_depth"].weight.copy_(_take(old_layers[f"layer{k}_conv_depth"].weight, kept[k - 1]))
        point = _take(_take(old_layers[f"layer{k}_conv_point"].weight, kept[k]), kept[k - 1], dim=1)
        new_layers[f"layer{k}_conv_point"].weight.copy_(point)
        new_layers[f"layer{k}_conv_point"].bias.copy_(_take(old_layers[f"layer{k}_conv_point"].bias, kept[k]))
        _copy_bn(old_layers[f"layer{k}_bn"], new_layers[f"layer{k}_bn"], kept[k])
    beta = old_layers["Beta"]
    side = model.map_size
    weight = beta.weight.view(model.n_outputs, side, side, model.filters[-1])  # readout flattens channels last
    new_layers["Beta"].weight.copy_(_take(weight, kept[-1], dim=3).reshape(model.n_outputs, -1))
    new_layers["Beta"].bias.copy_(beta.bias)
    return new.train(model.training)


def _fidelity(model: CompactModel, x: torch.Tensor, targets: np.ndarray, batch_size: int) -> float:
    return float(np.mean(fidelity_r2(model, x, targets, batch_size)))


def _choose_count(
    model: CompactModel,
    x: torch.Tensor,
    targets: np.ndarray,
    layer: int,
    order: np.ndarray,
    variance_count: int,
    floor_fidelity: float,
    settings: PruneSettings,
) -> int:
    """How many top filters layer ``layer`` keeps (see the module docstring)."""
    n_filters = model.filters[layer]
    last = layer == N_LAYERS - 1
    if not last and not settings.fidelity_guard:
        return variance_count
    start = min(settings.min_filters, n_filters) if last else variance_count

    def accept(n: int) -> bool:
        with zeroed_filters(model, layer, order[:n].tolist()):
            return _fidelity(model, x, targets, settings.batch_size) >= floor_fidelity - FIDELITY_TOLERANCE

    return _first_count(list(range(start, n_filters + 1)), accept)


def prune(
    model: CompactModel,
    probe_images: np.ndarray,
    probe_targets: np.ndarray,
    settings: PruneSettings | None = None,
) -> tuple[CompactModel, dict[str, Any]]:
    """Prune ``model`` layer by layer from the last; returns the rebuilt model (not retrained) and a report."""
    settings = settings or PruneSettings()
    was_training = model.training
    current = copy.deepcopy(model).eval()
    x = current.preprocess(probe_images)
    fidelity_before = _fidelity(current, x, probe_targets, settings.batch_size)
    floor_fidelity = settings.fidelity_fraction * fidelity_before
    original_index = [list(range(n)) for n in model.filters]  # current filter -> original filter, per layer
    variance_counts = [0] * N_LAYERS
    for layer in reversed(range(N_LAYERS)):
        variances = filter_variances(current, x, layer, settings.batch_size)
        order = rank_filters(variances)
        variance_counts[layer] = count_for_variance(variances, settings.variance_fraction, settings.min_filters)
        n = _choose_count(current, x, probe_targets, layer, order, variance_counts[layer], floor_fidelity, settings)
        kept_now = sorted(order[:n].tolist())
        kept = [list(range(f)) for f in current.filters]
        kept[layer] = kept_now
        current = rebuild_with_filters(current, kept)
        original_index[layer] = [original_index[layer][i] for i in kept_now]
    report = {
        "kept": original_index,
        "filters_before": list(model.filters),
        "filters_after": list(current.filters),
        "variance_counts": variance_counts,
        "parameters_before": model.n_parameters(),
        "parameters_after": current.n_parameters(),
        "fidelity_before": fidelity_before,
        "fidelity_after": _fidelity(current, x, probe_targets, settings.batch_size),
    }
    return current.train(was_training), report
