"""The run summary: results/<dataset>/summary.json, the headline figures of a run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def write_summary(
    path: str | Path, *, dataset: str, roles: Mapping[str, str], session_paths: Sequence[str | Path]
) -> None:
    summary = {
        "dataset": dataset,
        "code_version": code_version(),
        "data": data_summary(roles, session_paths),
    }
    write_text_atomic(path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
