"""Dot detectors (METHODS.md section 6, Fig. 4): which compact models prefer dots, how they are tuned to the dots'
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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from compactcortex.analysis.compressibility import bottleneck_layer
from compactcortex.atomic import atomic_path
from compactcortex.compact.distill import predict
from compactcortex.io.compact_models import load_compact_model
from compactcortex.models.compact import CompactModel
from compactcortex.stimuli import dot_battery
from compactcortex.synthesis.jobs import CONTROL, read_stimuli

log = logging.getLogger(__name__)

TUNING_FACTORS = {"number": "n_dots", "radius": "dot_radius", "spacing": "spacing", "contrast": "contrast"}


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


def dots_job(
    *,
    model_tables: Sequence[str],
    stimulus_sets: Sequence[str],
    truths: Sequence[str],
    selectivity_output: str,
    tuning_output: str,
    ablation_output: str,
    threshold: float,
    key_channels: int,
) -> None:
    """Dot selectivity of every compact model (natural reference: the closed-loop controls of its session), the
    dot tuning of every model, and the ablation of the most dot-selective model's consolidation step."""
    rows, tuning, models = [], [], {}
    kinds = _true_kinds(truths)
    for table_path, stimuli_path in zip(model_tables, stimulus_sets, strict=True):
        images, stimuli = read_stimuli(Path(stimuli_path) / "stimuli.nc")
        natural = images[(stimuli["stimulus"] == CONTROL).to_numpy()]
        battery, params = dot_battery(images.shape[1])
        table = pd.read_csv(table_path)
        for neuron, card in zip(table["neuron"], table["card"], strict=True):
            model, _ = load_compact_model(Path(table_path).parent / card)
            responses = predict(model, battery)[:, 0]
            natural_responses = predict(model, natural)[:, 0]
            rows.append(
                {
                    "neuron": neuron,
                    "dot_selectivity": dot_selectivity(responses, natural_responses),
                    "true_kind": kinds.get(neuron, ""),
                }
            )
            models[neuron] = (model, battery, natural)
            scale = np.std(natural_responses, ddof=1)
            for factor, column in TUNING_FACTORS.items():
                chosen = (params["factor"] == factor) | (params["factor"] == "reference")
                for value, response in zip(params[column][chosen], responses[chosen], strict=True):
                    tuning.append(
                        {
                            "neuron": neuron,
                            "factor": factor,
                            "value": float(value),
                            "response": float(response),
                            "response_z": float((response - natural_responses.mean()) / scale),
                        }
                    )
    selectivity = pd.DataFrame(rows)
    selectivity["dot_selective"] = selectivity["dot_selectivity"] > threshold
    best = selectivity.loc[selectivity["dot_selectivity"].idxmax(), "neuron"]
    ablation = ablation_table(*models[best], n_key=key_channels)
    ablation.insert(0, "neuron", best)
    for path, frame in (
        (selectivity_output, selectivity),
        (tuning_output, pd.DataFrame(tuning)),
        (ablation_output, ablation),
    ):
        with atomic_path(path) as temporary:
            frame.to_csv(temporary, index=False, float_format="%.6g")
    log.info(
        "%d of %d models dot-selective (> %.1f sd); most selective %s: %.2f sd, %.2f with %d key channels silenced",
        int(selectivity["dot_selective"].sum()),
        len(selectivity),
        threshold,
        best,
        ablation["dot_selectivity"].iloc[0],
        float(ablation.loc[ablation["silenced"].str.contains("key"), "dot_selectivity"].iloc[0]),
        key_channels,
    )


def _true_kinds(truths: Sequence[str]) -> dict[str, str]:
    """neuron -> its simulated kind (curvature, texture, colour, dot), where the data are simulated."""
    import xarray as xr

    kinds: dict[str, str] = {}
    for path in truths:
        with xr.open_dataset(path) as truth:
            kinds.update(zip(truth["neuron"].values.astype(str), truth["neuron_kind"].values.astype(str), strict=True))
    return kinds
