"""The teacher's labels of a distillation pool: the ensemble mean through each neuron's fitted mapping.

All neurons of a test session are labelled in one batched pass over the pool's cached backbone features, once per
session; every student of the session trains on these labels (METHODS.md section 4).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.ensemble.active_learning import member_predictions
from compactcortex.ensemble.data import load_features
from compactcortex.errors import InputDataError
from compactcortex.features import read_images
from compactcortex.provenance import provenance_attrs

log = logging.getLogger(__name__)


def teacher_labels_job(
    *,
    member_paths: Sequence[str],
    readouts: str,
    pool: str,
    pool_features: str,
    output: str,
    layer: str,
    device: str,
) -> None:
    """Write teacher(neuron, image) for the pool, in the mapping's units (responses z-scored on the first half)."""
    _, image_ids = read_images(pool)
    with xr.open_dataset(pool, engine="netcdf4") as dataset:
        split = dataset["split"].values.astype(str)
    features = load_features(pool_features, layer, image_ids)
    labels = member_predictions(member_paths, [readouts], features, device).mean(axis=0)  # (neuron, image)
    if not np.all(np.isfinite(labels)):
        raise InputDataError(Path(readouts), "the teacher's labels of the pool are not all finite")
    neuron_ids = torch.load(readouts, map_location="cpu", weights_only=False)["neuron_ids"]
    dataset = xr.Dataset(
        {"teacher": (("neuron", "image"), labels.astype(np.float32), {"units": "ensemble mean prediction"})},
        coords={"neuron": list(neuron_ids), "image": image_ids, "split": ("image", split)},
        attrs=provenance_attrs({"layer": layer, "members": len(member_paths)}, [*member_paths, readouts, pool]),
    )
    with atomic_path(output) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4")
    log.info("teacher labels: %d neurons x %d pool images", labels.shape[0], labels.shape[1])


def read_teacher_labels(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (neuron, image) float64, neuron ids, split per image)."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            return (
                dataset["teacher"].values.astype(np.float64),
                dataset["neuron"].values.astype(str),
                dataset["split"].values.astype(str),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(Path(path), f"cannot be read as teacher labels: {exc}") from exc
