"""Dot detectors (docs/method.md section 6, Fig. 4): which compact models prefer dots, how they are tuned to the dots'
number, size, spacing and contrast, and which few channels of the consolidation step carry that preference.

Dot selectivity of a model: its mean response to the artificial dot battery (``stimuli.dot_battery``) minus its
mean response to natural images, in units of the natural responses' standard deviation. For the most dot-selective
model, each channel of its bottleneck layer (the consolidation step) is silenced in turn; the channels whose loss
costs the most selectivity are then silenced together, against silencing all the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from compactcortex.analysis.compressibility import bottleneck_layer
from compactcortex.models.compact import CompactModel, predict

log = logging.getLogger(__name__)


def dot_selectivity(battery: np.ndarray, natural: np.ndarray) -> float:
    """(mean battery response - mean natural response) / sd of the natural responses."""
    spread = np.std(natural, ddof=1)
    return float((np.mean(battery) - np.mean(natural)) / spread) if spread > 0 else float("nan")


@contextmanager
def silenced(model: CompactModel, layer: int, channels: Sequence[int]) -> Iterator[CompactModel]:
    """The model with ``channels`` of ``layer`` set to zero after its BatchNorm (so after the ReLU too)."""
    mask = torch.ones(model.filters[layer])
    mask[list(channels)] = 0

    def hook(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output * mask.to(output).view(1, -1, 1, 1)

    handle = model.layers[f"layer{layer}_bn"].register_forward_hook(hook)
    try:
        yield model
    finally:
        handle.remove()


def ablation_table(model: CompactModel, battery: np.ndarray, natural: np.ndarray, n_key: int) -> pd.DataFrame:
    """Selectivity with each bottleneck channel silenced, then the ``n_key`` most costly ones together and the rest
    together; ``natural_r``: how well the silenced model still follows the intact one on natural images."""
    layer = bottleneck_layer(model.filters)
    intact_battery, intact_natural = predict(model, battery)[:, 0], predict(model, natural)[:, 0]
    intact = dot_selectivity(intact_battery, intact_natural)

    def row(label: str, channels: Sequence[int]) -> dict:
        with silenced(model, layer, channels):
            b, n = predict(model, battery)[:, 0], predict(model, natural)[:, 0]
        r = np.corrcoef(n, intact_natural)[0, 1] if np.std(n) > 0 else float("nan")
        return {
            "silenced": label,
            "channels": " ".join(map(str, channels)),
            "layer": layer,
            "dot_selectivity": dot_selectivity(b, n),
            "battery_mean": float(b.mean()),
            "natural_mean": float(n.mean()),
            "natural_r": float(r),
        }

    rows = [{**row("none", []), "dot_selectivity": intact}]
    singles = [row(f"channel {c}", [c]) for c in range(model.filters[layer])]
    rows += singles
    cost = np.array([intact - s["dot_selectivity"] for s in singles])
    key = sorted(np.argsort(-cost, kind="stable")[:n_key].tolist())
    rest = [c for c in range(model.filters[layer]) if c not in key]
    rows.append(row(f"the {len(key)} key channels", key))
    if rest:
        rows.append(row(f"the other {len(rest)} channels", rest))
    return pd.DataFrame(rows)
