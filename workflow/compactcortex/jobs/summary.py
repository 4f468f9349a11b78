"""The run summary: results/<dataset>/summary.json, the headline figures of a run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from compactcortex.analysis.compressibility import clusters_to_cover
from compactcortex.atomic import write_text_atomic
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.metrics import median_ignoring_nan
from compactcortex.provenance import code_version
from compactcortex.synthesis.closed_loop import SIGNIFICANCE


def _number(value: float) -> float | None:
    """JSON has no NaN: a figure that cannot be computed is null."""
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def session_summary(path: str | Path, role: str) -> dict[str, Any]:
    with open_session_dataset(path) as dataset:
        reliability = dataset["spearman_brown_reliability"].values
        return {
            "role": role,
            "monkey": dataset.attrs["monkey"],
            "response_kind": dataset.attrs["response_kind"],
            "n_neurons": int(dataset.sizes["neuron"]),
            "n_reliable_neurons": int(dataset["reliable"].sum()),
            "n_images": int(dataset.sizes["image"]),
            "median_repeats": _number(np.median(dataset["n_repeats"].values)),
            "median_reliability": _number(median_ignoring_nan(reliability)),
            "median_explainable_variance_fraction": _number(
                median_ignoring_nan(dataset["explainable_variance_fraction"].values)
            ),
            "reliability": reliability,
        }


def data_summary(roles: Mapping[str, str], session_paths: Sequence[str | Path]) -> dict[str, Any]:
    sessions = {Path(path).stem: session_summary(path, roles[Path(path).stem]) for path in session_paths}
    all_reliability = np.concatenate([session.pop("reliability") for session in sessions.values()])
    return {
        "n_sessions": len(sessions),
        "n_neurons": sum(session["n_neurons"] for session in sessions.values()),
        "n_images": sum(session["n_images"] for session in sessions.values()),
        "median_reliability": _number(median_ignoring_nan(all_reliability)),
        "sessions": sessions,
    }


def ensemble_parameters(members: Sequence[Mapping[str, Any]]) -> int:
    """The ensemble's parameters as the paper counts them: the backbone up to the feature layer, once, plus every
    member's trainable core (``members``: the loaded member checkpoints)."""
    return int(members[0]["n_parameters_backbone"] + sum(member["n_parameters_core"] for member in members))


def model_summaries(
    member_paths: Sequence[str | Path], evaluation_paths: Sequence[str | Path], simulated: bool
) -> dict[str, Any]:
    """The ensemble and task-driven blocks: medians over all test neurons of the held-out accuracy."""
    members = [torch.load(path, map_location="cpu", weights_only=True) for path in member_paths]
    tables = {Path(path).stem: pd.read_csv(path) for path in evaluation_paths}
    pooled = pd.concat(tables.values(), ignore_index=True)

    def medians(model: str, table: pd.DataFrame) -> dict[str, float | None]:
        values = {
            "median_r2_er": _number(median_ignoring_nan(table[f"r2_er_{model}"].to_numpy())),
            "median_r": _number(median_ignoring_nan(table[f"r_{model}"].to_numpy())),
        }
        if model == "ensemble" or simulated:
            truth = table[f"r_to_truth_{model}"].to_numpy() if simulated else np.array([np.nan])
            values["median_r_to_truth"] = _number(median_ignoring_nan(truth))
        return values

    n_params = ensemble_parameters(members)
    blocks = {
        "ensemble": {
            **medians("ensemble", pooled),
            "n_params": int(n_params),
            "n_members": len(members),
            "median_validation_score": _number(median_ignoring_nan(np.array([m["validation_score"] for m in members]))),
            "sessions": {session: medians("ensemble", table) for session, table in tables.items()},
        },
        "task_driven": {
            **medians("task_driven", pooled),
            "sessions": {session: medians("task_driven", table) for session, table in tables.items()},
        },
    }
    if "r_compact" in pooled:
        blocks["compact"] = medians("compact", pooled)
    if "r_published_compact" in pooled:
        blocks["published_compact"] = medians("published_compact", pooled)
    return blocks


def compact_summary(compact_tables: Sequence[str | Path], ensemble_params: int) -> dict[str, Any]:
    """Size and fidelity of the compact models (all test sessions): medians over neurons."""
    table = pd.concat([pd.read_csv(path) for path in compact_tables], ignore_index=True)
    filters = table[[f"filters_layer{k}" for k in range(5)]].to_numpy()
    median_params = float(np.median(table["n_parameters"]))
    return {
        "median_params": int(round(median_params)),
        "min_params": int(table["n_parameters"].min()),
        "max_params": int(table["n_parameters"].max()),
        "ensemble_to_compact_params": _number(ensemble_params / median_params),
        "median_fidelity_r2": _number(median_ignoring_nan(table["fidelity_r2"].to_numpy())),
        "median_fidelity_r2_unpruned": _number(median_ignoring_nan(table["fidelity_r2_unpruned"].to_numpy())),
        "filters_per_layer_median": [_number(v) for v in np.median(filters, axis=0)],
        "n_models": len(table),
    }


def _ratio(compact: Mapping[str, Any], ensemble: Mapping[str, Any]) -> float | None:
    """The compact models' median held-out accuracy over the ensemble's (r2_ER where it exists, else r)."""
    key = "median_r2_er" if compact.get("median_r2_er") is not None else "median_r"
    if compact.get(key) is None or not ensemble.get(key):
        return None
    return _number(compact[key] / ensemble[key])


def paired_ratio(evaluation_paths: Sequence[str | Path]) -> float | None:
    """The median over neurons of each neuron's compact-model accuracy over its ensemble accuracy (r2_ER where
    the data have single trials, else r)."""
    table = pd.concat([pd.read_csv(path) for path in evaluation_paths], ignore_index=True)
    metric = "r2_er" if table["r2_er_compact"].notna().any() else "r"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (table[f"{metric}_compact"] / table[f"{metric}_ensemble"]).to_numpy()
    return _number(median_ignoring_nan(np.where(table[f"{metric}_ensemble"] > 0, ratio, np.nan)))


def synthesis_summary(score_tables: Sequence[str | Path], adversarial_tables: Sequence[str | Path]) -> dict[str, Any]:
    """The closed loop over all scored sessions: shares of neurons and medians over neurons."""
    scores = pd.concat([pd.read_csv(path) for path in score_tables], ignore_index=True)
    adversarial = pd.concat([pd.read_csv(path) for path in adversarial_tables], ignore_index=True)
    column = "true_correct" if "true_correct" in adversarial else "recorded_correct"
    significant = scores["p_maximizing_beats_natural"] < SIGNIFICANCE
    return {
        "n_neurons": len(scores),
        "frac_maximizing_beats_natural": _number(float(significant.mean())),
        "frac_natural_top_beats_natural": _number(float((scores["p_natural_top_beats_natural"] < SIGNIFICANCE).mean())),
        "frac_minimizing_below_natural": _number(float((scores["p_minimizing_below_natural"] < SIGNIFICANCE).mean())),
        "median_drive_ratio": _number(median_ignoring_nan(scores["drive_ratio"].to_numpy())),
        "median_drive_ratio_natural_top": _number(median_ignoring_nan(scores["drive_ratio_natural_top"].to_numpy())),
        "drive_from": str(scores["drive_from"].iloc[0]),
        "frac_adversarial_correct_direction": _number(float(adversarial[column].mean())),
        "frac_adversarial_correct_direction_recorded": _number(float(adversarial["recorded_correct"].mean())),
        "n_adversarial_images": len(adversarial),
    }


def analysis_summary(
    filters_table: str | Path, early_filters: str | Path, selectivity: str | Path, ablation: str | Path
) -> dict[str, Any]:
    """The consolidation step, the shared early filters and the dot detectors, in numbers."""
    table = pd.read_csv(filters_table)
    with xr.open_dataset(early_filters) as clusters:
        coverage = {name: clusters[f"{name}_coverage"].values for name in ("trained", "learned")}
        random = {name: clusters[f"{name}_coverage_random"].values for name in ("trained", "learned")}
    dots = pd.read_csv(selectivity)
    silenced = pd.read_csv(ablation)
    block: dict[str, Any] = {
        "bottleneck_layer_counts": {
            f"layer{k}": int(v) for k, v in table["bottleneck_layer"].value_counts().sort_index().items()
        },
        "early_filter_clusters": int(len(coverage["learned"])),
        "early_filters_share_covered": _number(float(coverage["trained"][-1])),
        "early_filters_share_covered_random": _number(float(random["trained"][-1])),
        "learned_early_filters_clusters_for_80pct": clusters_to_cover(coverage["learned"]),
        "learned_early_filters_share_covered": _number(float(coverage["learned"][-1])),
        "learned_early_filters_share_covered_random": _number(float(random["learned"][-1])),
        "n_dot_selective": int(dots["dot_selective"].sum()),
        "dot_detector": str(silenced["neuron"].iloc[0]),
        "dot_detector_selectivity": _number(float(silenced["dot_selectivity"].iloc[0])),
        "dot_detector_selectivity_key_channels_silenced": _number(
            float(silenced.loc[silenced["silenced"].str.contains("key"), "dot_selectivity"].iloc[0])
        ),
    }
    kinds = dots["true_kind"].fillna("").astype(str)
    if (kinds != "").any():
        truly = kinds == "dot"
        block["dot_detection_recall"] = _number(float(dots.loc[truly, "dot_selective"].mean())) if truly.any() else None
        block["dot_detection_precision"] = (
            _number(float(truly[dots["dot_selective"]].mean())) if dots["dot_selective"].any() else None
        )
    return block


def write_summary(
    path: str | Path,
    *,
    dataset: str,
    roles: Mapping[str, str],
    session_paths: Sequence[str | Path],
    member_paths: Sequence[str | Path] = (),
    evaluation_paths: Sequence[str | Path] = (),
    compact_tables: Sequence[str | Path] = (),
    closed_loop_scores: Sequence[str | Path] = (),
    closed_loop_adversarial: Sequence[str | Path] = (),
    analysis: Mapping[str, str | Path] | None = None,
    simulated: bool = False,
) -> None:
    summary = {
        "dataset": dataset,
        "code_version": code_version(),
        "data": data_summary(roles, session_paths),
    }
    if member_paths and evaluation_paths:
        summary.update(model_summaries(member_paths, evaluation_paths, simulated))
    if compact_tables and "compact" in summary:
        summary["compact"].update(compact_summary(compact_tables, summary["ensemble"]["n_params"]))
        summary["compact"]["accuracy_vs_ensemble"] = _ratio(summary["compact"], summary["ensemble"])
        summary["compact"]["median_paired_accuracy_ratio"] = paired_ratio(evaluation_paths)
    if closed_loop_scores:
        summary["synthesis"] = synthesis_summary(closed_loop_scores, closed_loop_adversarial)
    if analysis:
        summary["analysis"] = analysis_summary(**analysis)
    write_text_atomic(path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
