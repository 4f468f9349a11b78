"""Image sets on disk (candidate and distillation pools): images plus their type, as compressed NetCDF."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path


def write_image_set(
    path: str | Path,
    images: np.ndarray,
    image_ids: list[str] | np.ndarray,
    image_types: np.ndarray,
    attrs: Mapping[str, str],
    extra_coords: Mapping[str, np.ndarray] | None = None,
) -> None:
    """images: uint8 (n, size, size, 3); read back with ``features.read_images``. Written atomically."""
    size = images.shape[1]
    dataset = xr.Dataset(
        {"images": (("image", "y", "x", "channel"), images)},
        coords={
            "image": list(image_ids),
            "image_type": ("image", np.asarray(image_types).astype(str)),
            "channel": ["R", "G", "B"],
            **{name: ("image", values) for name, values in (extra_coords or {}).items()},
        },
        attrs=dict(attrs),
    )
    encoding = {"images": {"zlib": True, "complevel": 4, "chunksizes": (min(64, max(1, len(images))), size, size, 3)}}
    with atomic_path(path) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4", encoding=encoding)
