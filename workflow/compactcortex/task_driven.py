"""The task-driven baseline: frozen ImageNet features with ridge regression (METHODS.md section 3).

The layer and the ridge penalty are chosen by cross-validation inside the first half of the session's
images only; the second half is held out for evaluation, as for the ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from compactcortex.ensemble.data import halves, load_session, zscore
from compactcortex.ensemble.jobs import write_predictions
from compactcortex.features import feature_sets
from compactcortex.ridge import cross_validate_ridge

log = logging.getLogger(__name__)


def fit_task_driven(
    sets: Mapping[str, np.ndarray], repeat_mean: np.ndarray, alphas: tuple[float, ...], folds: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Predictions (neuron, image) for every image, fitted (layer and penalty included) on the first half."""
    n_images = repeat_mean.shape[1]
    fit, _ = halves(n_images)
    targets = zscore(repeat_mean[:, fit]).T
    model, report = cross_validate_ridge({name: x[fit] for name, x in sets.items()}, targets, alphas, folds, seed)
    chosen = report["chosen_set"]
    return model.predict(sets[chosen]).T, report


def task_driven_job(
    *,
    dataset: str,
    features_path: str,
    output: str,
    task_driven: Mapping[str, Any],
    features: Mapping[str, Any],
    seed: int,
) -> None:
    session = load_session(dataset, features_path, features["layer"])
    sets = feature_sets(features_path, features["baseline_layers"], session.image_ids)
    predictions, report = fit_task_driven(
        sets, session.repeat_mean(), tuple(task_driven["ridge_alphas"]), task_driven["cv_folds"], seed
    )
    log.info("%s: task-driven baseline chose layer %s", session.session, report["chosen_set"])
    write_predictions(
        output,
        predictions,
        session,
        {"task_driven": dict(task_driven), "features": dict(features), "seed": seed},
        [dataset, features_path],
        attrs={"chosen_layer": str(report["chosen_set"])},
    )
