"""The task-driven baseline: frozen ImageNet features with ridge regression (METHODS.md section 3).

The layer and the ridge penalty are chosen by cross-validation inside the first half of the session's
images only; the second half is held out for evaluation, as for the ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from compactcortex.ensemble.data import load_session, ridge_on_first_half
from compactcortex.ensemble.jobs import write_predictions
from compactcortex.features import feature_sets

log = logging.getLogger(__name__)


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
    predictions, _, report = ridge_on_first_half(
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
