"""The teacher's labels of a distillation pool: ``teacher(neuron, image)`` float32, with each pool image's split
('train' or 'heldout'), as NetCDF. ``TeacherLabelWriter`` writes them batch by batch (memory does not grow with the
pool), chunked along the images; the file appears under its name only once complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import netCDF4
import numpy as np
import xarray as xr

from compactcortex.atomic import current_umask
from compactcortex.errors import InputDataError


class TeacherLabelWriter:
    """``with TeacherLabelWriter(path, ...) as writer: writer.write(start, labels)`` for consecutive image batches;
    on success the file is renamed into place, on error removed."""

    CHUNK_IMAGES = 16384

    def __init__(
        self,
        path: str | Path,
        neuron_ids: Sequence[str],
        image_ids: Sequence[str] | np.ndarray,
        split: np.ndarray,
        attrs: Mapping[str, str],
    ) -> None:
        self.path = Path(path)
        self.n_images = len(image_ids)
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        os.close(handle)
        self.temporary = Path(temporary)
        self.file = netCDF4.Dataset(self.temporary, "w", format="NETCDF4")
        self.file.createDimension("neuron", len(neuron_ids))
        self.file.createDimension("image", self.n_images)
        for name, values in (("neuron", neuron_ids), ("image", image_ids), ("split", split)):
            variable = self.file.createVariable(name, str, ("image",) if name != "neuron" else ("neuron",))
            variable[:] = np.asarray(values, dtype=object)
        chunks = (max(1, len(neuron_ids)), max(1, min(self.n_images, self.CHUNK_IMAGES)))
        self.labels = self.file.createVariable("teacher", "f4", ("neuron", "image"), chunksizes=chunks)
        self.labels.units = "ensemble mean prediction"
        self.labels.coordinates = "split"
        self.file.setncatts(dict(attrs))

    def write(self, start: int, labels: np.ndarray) -> None:
        """labels: (neuron, batch) for images start, start + 1, ... (batches in order)."""
        if start != self.written:
            raise ValueError(f"batches must come in order: expected image {self.written}, got {start}")
        self.labels[:, start : start + labels.shape[1]] = labels.astype(np.float32)
        self.written += labels.shape[1]

    def __enter__(self) -> TeacherLabelWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.file.close()
        if kind is None and self.written != self.n_images:
            self.temporary.unlink(missing_ok=True)
            raise ValueError(f"{self.path}: {self.written} of {self.n_images} images were labelled")
        if kind is None:
            os.chmod(self.temporary, 0o666 & ~current_umask())
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


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
