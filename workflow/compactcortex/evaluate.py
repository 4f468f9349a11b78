"""Held-out accuracy of the ensemble and the task-driven baseline, per neuron of each test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from compactcortex import metrics
from compactcortex.atomic import atomic_path
from compactcortex.ensemble.data import halves
from compactcortex.session_dataset import open_session_dataset

TABLE_COLUMNS = (
    "neuron",
    "reliability",
    "r2_er_ensemble",
    "r_ensemble",
    "r2_er_task_driven",
    "r_task_driven",
    "r_to_truth_ensemble",
    "r_to_truth_task_driven",
    "member_spread",
)


def evaluation_table(
    dataset_path: str | Path,
    ensemble_path: str | Path,
    task_driven_path: str | Path,
    truth_path: str | Path | None = None,
) -> pd.DataFrame:
    """One row per neuron: r2_ER and Pearson r on the held-out half, for the ensemble mean and the baseline;
    on simulated data also the correlation with the neuron's true noiseless rate on the held-out half."""
    with xr.open_dataset(ensemble_path) as ensemble, xr.open_dataset(task_driven_path) as baseline:
        neurons = ensemble["neuron"].values
        members = ensemble["prediction"].transpose("member", "neuron", "image").values
        task_driven = baseline["prediction"].sel(neuron=neurons).transpose("neuron", "image").values
    with open_session_dataset(dataset_path) as dataset:
        responses = dataset["responses"].sel(neuron=neurons).values.astype(np.float64)
        reliability = dataset["spearman_brown_reliability"].sel(neuron=neurons).values
        single_trial = dataset.attrs["response_kind"] == "single_trial"
        image_ids = dataset["image"].values
    _, held_out = halves(responses.shape[1])
    mean_prediction = members.mean(axis=0)
    ensemble_accuracy = metrics.prediction_accuracy(mean_prediction[:, held_out], responses[:, held_out], single_trial)
    baseline_accuracy = metrics.prediction_accuracy(task_driven[:, held_out], responses[:, held_out], single_trial)
    table = pd.DataFrame(
        {
            "neuron": neurons,
            "reliability": reliability,
            "r2_er_ensemble": ensemble_accuracy["r2_er"],
            "r_ensemble": ensemble_accuracy["r"],
            "r2_er_task_driven": baseline_accuracy["r2_er"],
            "r_task_driven": baseline_accuracy["r"],
            "r_to_truth_ensemble": np.nan,
            "r_to_truth_task_driven": np.nan,
            "member_spread": members[:, :, held_out].std(axis=0).mean(axis=1),
        }
    )
    if truth_path is not None:
        with xr.open_dataset(truth_path) as truth:
            rate = truth["rate"].sel(neuron=neurons, image=image_ids).values[:, held_out]
        table["r_to_truth_ensemble"] = metrics.pearson_r(mean_prediction[:, held_out], rate)
        table["r_to_truth_task_driven"] = metrics.pearson_r(task_driven[:, held_out], rate)
    return table[list(TABLE_COLUMNS)]


def evaluate_session_job(
    *, dataset: str, ensemble: str, task_driven: str, output: str, truth: str | None = None
) -> None:
    table = evaluation_table(dataset, ensemble, task_driven, truth)
    with atomic_path(output) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
