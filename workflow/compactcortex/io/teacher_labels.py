"""The teacher's labels of a distillation pool: ``teacher(neuron, image)`` float32, with each pool image's split
('train' or 'heldout'), as NetCDF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError


def write_teacher_labels(
    path: str | Path,
    labels: np.ndarray,
    neuron_ids: Sequence[str],
    image_ids: np.ndarray,
    split: np.ndarray,
    attrs: Mapping[str, str],
) -> None:
    """labels: (neuron, image), in the mapping's units (responses z-scored on the first half)."""
    dataset = xr.Dataset(
        {"teacher": (("neuron", "image"), labels.astype(np.float32), {"units": "ensemble mean prediction"})},
        coords={"neuron": list(neuron_ids), "image": image_ids, "split": ("image", split)},
        attrs=dict(attrs),
    )
    with atomic_path(path) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4")


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
