"""Image sets on disk (session images, candidate and distillation pools, synthesised stimuli): uint8 images with one
id per image and per-image coordinates (``image_type``, and e.g. ``split`` or ``neuron``), as compressed NetCDF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError


def write_image_set(
    path: str | Path,
    images: np.ndarray,
    image_ids: list[str] | np.ndarray,
    image_types: np.ndarray,
    attrs: Mapping[str, str],
    extra_coords: Mapping[str, np.ndarray] | None = None,
) -> None:
    """images: uint8 (n, size, size, 3); read back with ``read_images`` and ``read_image_coords``. Written
    atomically."""
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


def read_images(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and image ids of an image set or a session dataset (any dataset with ``images``)."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            return dataset["images"].values, dataset["image"].values.astype(str)
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(path, f"cannot read images from it: {exc}") from exc


def read_image_coords(path: str | Path, names: Sequence[str], kind: str = "an image set") -> dict[str, np.ndarray]:
    """Per-image coordinates of an image set (e.g. ``image_type``, ``split``); a missing one is an error naming
    what the file was expected to be."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            found = {name: dataset[name].values for name in names if name in dataset.coords}
    except (OSError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as {kind}: {exc}") from exc
    missing = [name for name in names if name not in found]
    if missing:
        raise InputDataError(path, f"is not {kind}: it has no '{', '.join(missing)}' per image")
    return found
