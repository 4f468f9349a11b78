"""The compressibility analysis's clustering of the compact models' layer-0 filters (``analysis/early_filters.nc``):
per kind of filter (``trained``, ``learned``) the cluster centres, the share of models each number of clusters
covers (and its chance level from random filters), and every filter's cluster and similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError


def write_early_filters(path: str | Path, dataset: xr.Dataset) -> None:
    with atomic_path(path) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4")


def read_early_filters(path: str | Path) -> xr.Dataset:
    """The whole clustering, loaded (the file is closed)."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as clusters:
            return clusters.load()
    except (OSError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as the early filters' clustering: {exc}") from exc


def clusters_to_cover(coverage: np.ndarray, share: float = 0.8) -> int | None:
    """The fewest shared clusters that cover ``share`` of the models (None: no number does)."""
    reached = np.flatnonzero(coverage >= share)
    return int(reached[0] + 1) if reached.size else None
