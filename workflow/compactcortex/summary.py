"""The run summary: results/<dataset>/summary.json, the headline figures of a run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.metrics import median_ignoring_nan
from compactcortex.provenance import code_version
from compactcortex.session_dataset import open_session_dataset


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

    n_params = members[0]["n_parameters_backbone"] + sum(member["n_parameters_core"] for member in members)
    return {
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


def write_summary(
    path: str | Path,
    *,
    dataset: str,
    roles: Mapping[str, str],
    session_paths: Sequence[str | Path],
    member_paths: Sequence[str | Path] = (),
    evaluation_paths: Sequence[str | Path] = (),
    simulated: bool = False,
) -> None:
    summary = {
        "dataset": dataset,
        "code_version": code_version(),
        "data": data_summary(roles, session_paths),
    }
    if member_paths and evaluation_paths:
        summary.update(model_summaries(member_paths, evaluation_paths, simulated))
    write_text_atomic(path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
