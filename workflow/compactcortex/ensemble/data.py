"""Session data as the ensemble sees it: cached backbone features and z-scored responses."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from compactcortex.errors import InputDataError
from compactcortex.io.feature_cache import load_features
from compactcortex.io.predictions import halves
from compactcortex.io.session_dataset import open_session_dataset
from compactcortex.response_scale import counting_window_units, mean_and_sd
from compactcortex.ridge import RidgeModel, cross_validate_ridge


@dataclass
class SessionData:
    """One session's reliable neurons: responses, their z-scored repeat means, and the image features."""

    session: str
    features: torch.Tensor  # (image, channel, y, x), as cached (float16)
    responses: np.ndarray  # (neuron, image, repeat) single trials (or repeat means)
    neuron_ids: np.ndarray
    image_ids: np.ndarray
    response_kind: str
    source: Path
    response_units: str = "spikes per counting window"

    @property
    def n_images(self) -> int:
        return int(self.image_ids.size)

    @property
    def n_neurons(self) -> int:
        return int(self.neuron_ids.size)

    def repeat_mean(self) -> np.ndarray:
        """(neuron, image) mean over repeats."""
        return np.nanmean(self.responses, axis=2)


def zscore(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Z-score (neuron, image) values per neuron, with the mean and sd of `reference` (default: values)."""
    mean, sd = mean_and_sd(values if reference is None else reference)
    return (values - mean[:, None]) / sd[:, None]


def ridge_on_first_half(
    feature_sets: dict[str, np.ndarray], repeat_mean: np.ndarray, alphas: tuple[float, ...], folds: int, seed: int
) -> tuple[np.ndarray, RidgeModel, dict]:
    """Predictions (neuron, image) for every image from ridge regression fitted on the first half only:
    responses z-scored with first-half statistics, the feature set and each neuron's penalty chosen by
    cross-validation inside the first half."""
    fit, _ = halves(repeat_mean.shape[1])
    targets = zscore(repeat_mean[:, fit]).T
    model, report = cross_validate_ridge(
        {name: x[fit] for name, x in feature_sets.items()}, targets, alphas, folds, seed
    )
    return model.predict(feature_sets[report["chosen_set"]]).T, model, report


def load_session(dataset_path: str | Path, features_path: str | Path, layer: str) -> SessionData:
    """A session's reliable neurons and its images' features. No reliable neuron is an error."""
    dataset_path = Path(dataset_path)
    with open_session_dataset(dataset_path) as dataset:
        reliable = dataset["reliable"].values.astype(bool)
        if not reliable.any():
            raise InputDataError(
                dataset_path,
                f"no neuron passes the reliability criterion (min_reliability = {dataset.attrs['min_reliability']})",
            )
        image_ids = dataset["image"].values.astype(str)
        session = SessionData(
            session=str(dataset.attrs["session"]),
            features=load_features(features_path, layer, image_ids),
            responses=dataset["responses"].values[reliable].astype(np.float64),
            neuron_ids=dataset["neuron"].values[reliable].astype(str),
            image_ids=image_ids,
            response_kind=str(dataset.attrs["response_kind"]),
            source=dataset_path,
            response_units=counting_window_units(dataset.attrs),
        )
    return session


def fit_half(session: SessionData) -> SessionData:
    """The session restricted to its fit half (the first half of its images, index order): what a test session may
    lend the ensemble's training. Its held-out half, the only images it is scored on, is left out."""
    fit, _ = halves(session.n_images)
    return replace(
        session, features=session.features[fit], responses=session.responses[:, fit], image_ids=session.image_ids[fit]
    )
