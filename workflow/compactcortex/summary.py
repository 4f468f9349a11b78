"""The run summary's blocks: the headline figures of a run, each from the outputs of one stage (the job:
``jobs.summary.summary``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compactcortex.io.compact_models import FILTER_COLUMNS
from compactcortex.io.early_filters import clusters_to_cover, read_early_filters
from compactcortex.io.members import ensemble_parameters, read_member
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.io.tables import read_table, read_tables
from compactcortex.metrics import SIGNIFICANCE, median_ignoring_nan


def number_or_none(value: float) -> float | None:
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
            "median_repeats": number_or_none(np.median(dataset["n_repeats"].values)),
            "median_reliability": number_or_none(median_ignoring_nan(reliability)),
            "median_explainable_variance_fraction": number_or_none(
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
        "median_reliability": number_or_none(median_ignoring_nan(all_reliability)),
        "sessions": sessions,
    }


def model_summaries(
    member_paths: Sequence[str | Path], evaluation_paths: Sequence[str | Path], simulated: bool
) -> dict[str, Any]:
    """The ensemble and task-driven blocks: medians over all test neurons of the held-out accuracy."""
    members = [read_member(path) for path in member_paths]
    tables = {Path(path).stem: read_table(path) for path in evaluation_paths}
    pooled = pd.concat(tables.values(), ignore_index=True)

    def medians(model: str, table: pd.DataFrame) -> dict[str, float | None]:
        values = {
            "median_r2_er": number_or_none(median_ignoring_nan(table[f"r2_er_{model}"].to_numpy())),
            "median_r": number_or_none(median_ignoring_nan(table[f"r_{model}"].to_numpy())),
        }
        if model == "ensemble" or simulated:
            truth = table[f"r_to_truth_{model}"].to_numpy() if simulated else np.array([np.nan])
            values["median_r_to_truth"] = number_or_none(median_ignoring_nan(truth))
        return values

    def per_session(model: str) -> dict[str, dict[str, float | None]]:
        """Medians per test session, for the sessions where the model predicts some neuron."""
        return {
            session: medians(model, table)
            for session, table in tables.items()
            if f"r_{model}" in table and table[f"r_{model}"].notna().any()
        }

    n_params = ensemble_parameters(members)
    ensemble_pooled, task_driven_pooled = medians("ensemble", pooled), medians("task_driven", pooled)
    ensemble_sessions = per_session("ensemble")
    task_driven_sessions = per_session("task_driven")
    for session, block in ensemble_sessions.items():
        block["over_task_driven"] = accuracy_gain(block, task_driven_sessions.get(session, {}))
    blocks = {
        "ensemble": {
            **ensemble_pooled,
            "n_params": int(n_params),
            "n_members": len(members),
            "median_validation_score": number_or_none(
                median_ignoring_nan(np.array([m["validation_score"] for m in members]))
            ),
            "over_task_driven": accuracy_gain(ensemble_pooled, task_driven_pooled),
            "sessions": ensemble_sessions,
        },
        "task_driven": {**task_driven_pooled, "sessions": task_driven_sessions},
    }
    for model in ("compact", "published_compact"):
        if f"r_{model}" in pooled and pooled[f"r_{model}"].notna().any():
            blocks[model] = {**medians(model, pooled), "sessions": per_session(model)}
    return blocks


def accuracy_gain(model: Mapping[str, Any], baseline: Mapping[str, Any]) -> float | None:
    """How much better a model predicts than a baseline: the ratio of their median r2_ER where the data have single
    trials, else of their median r squared (repeat-averaged data: no noise correction), so that 1.2 reads "20% more
    explained variance"."""
    if model.get("median_r2_er") is not None and baseline.get("median_r2_er"):
        return number_or_none(model["median_r2_er"] / baseline["median_r2_er"])
    if model.get("median_r") is not None and baseline.get("median_r"):
        return number_or_none((model["median_r"] / baseline["median_r"]) ** 2)
    return None


def compact_summary(compact_tables: Sequence[str | Path], ensemble_params: int) -> dict[str, Any]:
    """Size and fidelity of the compact models (all test sessions): medians over neurons; per session (the
    ``compact/<session>/models.csv`` tables) under ``sessions``."""
    per_session = {Path(path).parent.name: read_table(path) for path in compact_tables}
    table = pd.concat(per_session.values(), ignore_index=True)
    sessions = {
        session: {
            "median_fidelity_r2": number_or_none(median_ignoring_nan(session_table["fidelity_r2"].to_numpy())),
            "median_params": int(round(float(np.median(session_table["n_parameters"])))),
            "n_models": len(session_table),
        }
        for session, session_table in per_session.items()
    }
    filters = table[[f"filters_layer{k}" for k in range(5)]].to_numpy()
    median_params = float(np.median(table["n_parameters"]))
    return {
        "median_params": int(round(median_params)),
        "min_params": int(table["n_parameters"].min()),
        "max_params": int(table["n_parameters"].max()),
        "ensemble_to_compact_params": number_or_none(ensemble_params / median_params),
        "median_fidelity_r2": number_or_none(median_ignoring_nan(table["fidelity_r2"].to_numpy())),
        "median_fidelity_r2_unpruned": number_or_none(median_ignoring_nan(table["fidelity_r2_unpruned"].to_numpy())),
        "filters_per_layer_median": [number_or_none(v) for v in np.median(filters, axis=0)],
        "n_models": len(table),
        "sessions": sessions,
    }


def accuracy_ratio(compact: Mapping[str, Any], ensemble: Mapping[str, Any]) -> float | None:
    """The compact models' median held-out accuracy over the ensemble's (r2_ER where it exists, else r)."""
    key = "median_r2_er" if compact.get("median_r2_er") is not None else "median_r"
    if compact.get(key) is None or not ensemble.get(key):
        return None
    return number_or_none(compact[key] / ensemble[key])


def paired_ratio(evaluation_paths: Sequence[str | Path]) -> float | None:
    """The median over neurons of each neuron's compact-model accuracy over its ensemble accuracy (r2_ER where
    the data have single trials, else r)."""
    table = read_tables(evaluation_paths)
    metric = "r2_er" if table["r2_er_compact"].notna().any() else "r"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (table[f"{metric}_compact"] / table[f"{metric}_ensemble"]).to_numpy()
    return number_or_none(median_ignoring_nan(np.where(table[f"{metric}_ensemble"] > 0, ratio, np.nan)))


def synthesis_summary(score_tables: Sequence[str | Path], adversarial_tables: Sequence[str | Path]) -> dict[str, Any]:
    """The closed loop over all scored sessions: shares of neurons and medians over neurons."""
    scores = read_tables(score_tables)
    adversarial = read_tables(adversarial_tables)
    column = "true_correct" if "true_correct" in adversarial else "recorded_correct"
    significant = scores["p_maximizing_beats_natural"] < SIGNIFICANCE
    return {
        "n_neurons": len(scores),
        "frac_maximizing_beats_natural": number_or_none(float(significant.mean())),
        "frac_natural_top_beats_natural": number_or_none(
            float((scores["p_natural_top_beats_natural"] < SIGNIFICANCE).mean())
        ),
        "frac_minimizing_below_natural": number_or_none(
            float((scores["p_minimizing_below_natural"] < SIGNIFICANCE).mean())
        ),
        "median_drive_ratio": number_or_none(median_ignoring_nan(scores["drive_ratio"].to_numpy())),
        "median_drive_ratio_natural_top": number_or_none(
            median_ignoring_nan(scores["drive_ratio_natural_top"].to_numpy())
        ),
        "drive_from": str(scores["drive_from"].iloc[0]),
        "frac_adversarial_correct_direction": number_or_none(float(adversarial[column].mean())),
        "frac_adversarial_correct_direction_recorded": number_or_none(float(adversarial["recorded_correct"].mean())),
        "n_adversarial_images": len(adversarial),
    }


def bottleneck_layer_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many models have their narrowest layer (the consolidation step) at each layer."""
    return {f"layer{k}": int(v) for k, v in table["bottleneck_layer"].value_counts().sort_index().items()}


def analysis_summary(
    filters_table: str | Path, early_filters: str | Path, selectivity: str | Path, ablation: str | Path
) -> dict[str, Any]:
    """The consolidation step, the shared early filters and the dot detectors, in numbers."""
    table = read_table(filters_table)
    with read_early_filters(early_filters) as clusters:
        coverage = {name: clusters[f"{name}_coverage"].values for name in ("trained", "learned")}
        random = {name: clusters[f"{name}_coverage_random"].values for name in ("trained", "learned")}
    dots = read_table(selectivity)
    silenced = read_table(ablation)
    block: dict[str, Any] = {
        "bottleneck_layer_counts": bottleneck_layer_counts(table),
        "early_filter_clusters": int(len(coverage["learned"])),
        "early_filters_share_covered": number_or_none(float(coverage["trained"][-1])),
        "early_filters_share_covered_random": number_or_none(float(random["trained"][-1])),
        "learned_early_filters_clusters_for_80pct": clusters_to_cover(coverage["learned"]),
        "learned_early_filters_share_covered": number_or_none(float(coverage["learned"][-1])),
        "learned_early_filters_share_covered_random": number_or_none(float(random["learned"][-1])),
        "n_dot_selective": int(dots["dot_selective"].sum()),
        "dot_detector": str(silenced["neuron"].iloc[0]),
        "dot_detector_selectivity": number_or_none(float(silenced["dot_selectivity"].iloc[0])),
        "dot_detector_selectivity_key_channels_silenced": number_or_none(
            float(silenced.loc[silenced["silenced"].str.contains("key"), "dot_selectivity"].iloc[0])
        ),
    }
    kinds = dots["true_kind"].fillna("").astype(str)
    if (kinds != "").any():
        truly = kinds == "dot"
        block["dot_detection_recall"] = (
            number_or_none(float(dots.loc[truly, "dot_selective"].mean())) if truly.any() else None
        )
        block["dot_detection_precision"] = (
            number_or_none(float(truly[dots["dot_selective"]].mean())) if dots["dot_selective"].any() else None
        )
    return block


def published_analysis_summary(
    filters_table: str | Path, early_filters: str | Path, selectivity: str | Path
) -> dict[str, Any]:
    """The paper's own compact models through the same analyses: filters per layer, the consolidation step, shared
    early filters and dot selectivity."""
    table = read_table(filters_table)
    with read_early_filters(early_filters) as clusters:
        coverage = clusters["trained_coverage"].values
        random = clusters["trained_coverage_random"].values
    dots = read_table(selectivity)
    return {
        "n_models": len(table),
        "filters_per_layer_median": [float(v) for v in table[FILTER_COLUMNS].median()],
        "median_params": number_or_none(float(table["n_parameters"].median())),
        "bottleneck_layer_counts": bottleneck_layer_counts(table),
        "early_filter_clusters": int(len(coverage)),
        "early_filters_clusters_for_80pct": clusters_to_cover(coverage),
        "early_filters_share_covered": number_or_none(float(coverage[-1])),
        "early_filters_share_covered_random": number_or_none(float(random[-1])),
        "n_dot_selective": int(dots["dot_selective"].sum()),
        "median_dot_selectivity": number_or_none(float(dots["dot_selectivity"].median())),
    }
