"""Held-out accuracy of every model of a test session (ensemble, task-driven baseline, compact models), per neuron."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from compactcortex import metrics
from compactcortex.io.ground_truth import read_ground_truth
from compactcortex.io.predictions import halves, read_predictions
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.io.tables import read_table
from compactcortex.response_scale import ResponseScale, counting_window_units

# Models in the order of the table's columns; a session's table has those it was given.
MODELS = ("ensemble", "task_driven", "compact", "published_compact")


@dataclass
class HeldOutResponses:
    """A test session's responses of some neurons, and which images are held out (the second half)."""

    responses: np.ndarray  # (neuron, image, repeat), or repeat means (neuron, image, 1)
    reliability: np.ndarray
    single_trial: bool
    image_ids: np.ndarray
    held_out: np.ndarray
    units: str = "spikes per counting window"

    def response_scale(self) -> ResponseScale:
        """What the models' z-scored predictions of these neurons are in spike counts (the fit half's statistics)."""
        return ResponseScale.of_fit_half(self.responses, self.units)

    def accuracy(self, prediction: np.ndarray) -> dict[str, np.ndarray]:
        """r2_ER (single trials only) and Pearson r on the held-out half; prediction (neuron, image), all images.
        NaN for a neuron without a prediction (a row of NaN: e.g. no published compact model)."""
        has = np.isfinite(prediction[:, self.held_out]).all(axis=1)
        accuracy = {"r": np.full(len(prediction), np.nan), "r2_er": np.full(len(prediction), np.nan)}
        if has.any():
            held = np.ix_(has, self.held_out)
            found = metrics.prediction_accuracy(
                prediction[held], self.responses[has][:, self.held_out], self.single_trial
            )
            for key in accuracy:
                accuracy[key][has] = found[key]
        return accuracy


def held_out_responses(dataset_path: str | Path, neurons: np.ndarray) -> HeldOutResponses:
    with open_session_dataset(dataset_path) as dataset:
        responses = dataset["responses"].sel(neuron=neurons).values.astype(np.float64)
        return HeldOutResponses(
            responses=responses,
            reliability=dataset["spearman_brown_reliability"].sel(neuron=neurons).values,
            single_trial=dataset.attrs["response_kind"] == "single_trial",
            image_ids=dataset["image"].values,
            held_out=halves(responses.shape[1])[1],
            units=counting_window_units(dataset.attrs),
        )


def evaluation_table(
    dataset_path: str | Path, prediction_paths: Mapping[str, str | Path], truth_path: str | Path | None = None
) -> pd.DataFrame:
    """One row per neuron (the ensemble's): r2_ER and Pearson r on the held-out half for each model (the ensemble
    by its members' mean); on simulated data also the correlation with the neuron's true noiseless rate."""
    unknown = sorted(set(prediction_paths) - set(MODELS))
    if unknown or "ensemble" not in prediction_paths:
        raise ValueError(f"models must include 'ensemble' and be among {MODELS}, got {sorted(prediction_paths)}")
    members, neurons = read_predictions(prediction_paths["ensemble"])
    held = held_out_responses(dataset_path, neurons)
    rate = None
    if truth_path is not None:
        rate = read_ground_truth(truth_path)["rate"].sel(neuron=neurons, image=held.image_ids).values[:, held.held_out]
    table = pd.DataFrame({"neuron": neurons, "reliability": held.reliability})
    for model in (m for m in MODELS if m in prediction_paths):
        predictions = members if model == "ensemble" else read_predictions(prediction_paths[model], neurons)[0]
        mean_prediction = predictions.mean(axis=0)
        accuracy = held.accuracy(mean_prediction)
        table[f"r2_er_{model}"] = accuracy["r2_er"]
        table[f"r_{model}"] = accuracy["r"]
        table[f"r_to_truth_{model}"] = (
            metrics.pearson_r(mean_prediction[:, held.held_out], rate) if rate is not None else np.nan
        )
    table["member_spread"] = members[:, :, held.held_out].std(axis=0).mean(axis=1)
    return table


def comparison_table(evaluation_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per test session: the number of neurons and each model's median r and r2_ER on the held-out half
    (over the neurons that model has: the published compact models cover some neurons only)."""
    rows = []
    for path in evaluation_paths:
        table = read_table(path)
        row: dict[str, object] = {"session": Path(path).stem, "n_neurons": len(table)}
        for model in MODELS:
            if f"r_{model}" not in table:
                continue
            has = table[f"r_{model}"].notna()
            row[f"n_neurons_{model}"] = int(has.sum())
            row[f"median_r_{model}"] = metrics.median_ignoring_nan(table[f"r_{model}"].to_numpy())
            row[f"median_r2_er_{model}"] = metrics.median_ignoring_nan(table[f"r2_er_{model}"].to_numpy())
        present = [model for model in MODELS if f"r_{model}" in table]
        paired = table[[f"r_{model}" for model in present]].notna().all(axis=1)
        row["n_neurons_paired"] = int(paired.sum())
        for model in present:  # over the neurons every model has: a like-for-like comparison
            row[f"paired_median_r_{model}"] = metrics.median_ignoring_nan(table.loc[paired, f"r_{model}"].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)
