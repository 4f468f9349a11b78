"""The teacher's labels of a distillation pool: ``teacher(neuron, image)`` float32 as NetCDF, image ``i`` being pool
index ``i``; the pool's held-out part starts at the attribute ``heldout_start``. No per-image strings: at the paper's
scale (12 million images) an image id and a split per image would outweigh the labels' bookkeeping many times.

``TeacherLabelWriter`` writes them batch by batch (memory does not grow with the pool), chunked along the images in
blocks of ``CHUNK_IMAGES``; the file appears under its name only once complete. ``TeacherLabels`` reads some neurons'
labels one image range at a time (a compression job reads only its own neurons)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import netCDF4
import numpy as np

from compactcortex.atomic import current_umask
from compactcortex.errors import InputDataError

CHUNK_IMAGES = 16384  # images per chunk of the file: the blocks a compression job reads (and shuffles within)
VARIABLE = "teacher"


class TeacherLabelWriter:
    """``with TeacherLabelWriter(path, ...) as writer: writer.write(start, labels)`` for consecutive image batches;
    on success the file is renamed into place, on error removed."""

    def __init__(
        self,
        path: str | Path,
        neuron_ids: Sequence[str],
        n_images: int,
        heldout_start: int,
        attrs: Mapping[str, str],
    ) -> None:
        if not 0 < heldout_start < n_images:
            raise ValueError(f"the held-out part must start inside the pool, got {heldout_start} of {n_images}")
        self.path = Path(path)
        self.n_images = n_images
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        os.close(handle)
        self.temporary = Path(temporary)
        self.file = netCDF4.Dataset(self.temporary, "w", format="NETCDF4")
        self.file.createDimension("neuron", len(neuron_ids))
        self.file.createDimension("image", n_images)
        neuron = self.file.createVariable("neuron", str, ("neuron",))
        neuron[:] = np.asarray(neuron_ids, dtype=object)
        chunks = (max(1, len(neuron_ids)), max(1, min(n_images, CHUNK_IMAGES)))
        self.labels = self.file.createVariable(VARIABLE, "f4", ("neuron", "image"), chunksizes=chunks)
        self.labels.units = "ensemble mean prediction"
        self.labels.long_name = "teacher label of pool image (index along image = pool index)"
        self.file.setncatts({**attrs, "pool_images": n_images, "heldout_start": heldout_start})

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


class TeacherLabels:
    """Some neurons' labels from a teacher-label file, read one image range at a time (``read``); a context manager.

    ``neurons=None`` reads every neuron. Raises ``InputDataError`` naming the file for a file that is not teacher
    labels, or for neurons it does not hold."""

    def __init__(self, path: str | Path, neurons: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        try:
            self.file = netCDF4.Dataset(self.path, "r")
        except OSError as exc:
            raise InputDataError(self.path, f"cannot be read as teacher labels: {exc}") from exc
        try:
            self._open(neurons)
        except BaseException:
            self.file.close()
            raise

    def _open(self, neurons: Sequence[str] | None) -> None:
        missing = [name for name in (VARIABLE, "neuron") if name not in self.file.variables]
        attributes = [name for name in ("pool_images", "heldout_start") if name not in self.file.ncattrs()]
        if missing or attributes:
            raise InputDataError(self.path, f"is not a teacher-label file: no {missing + attributes}")
        self.variable = self.file.variables[VARIABLE]
        self.variable.set_auto_mask(False)
        self.all_neurons = np.asarray(self.file.variables["neuron"][:], dtype=str)
        self.n_images = int(self.file.getncattr("pool_images"))
        self.heldout_start = int(self.file.getncattr("heldout_start"))
        if self.variable.shape != (len(self.all_neurons), self.n_images):
            raise InputDataError(self.path, f"labels {self.variable.shape} disagree with its neurons and pool size")
        index = {neuron: row for row, neuron in enumerate(self.all_neurons)}
        wanted = list(self.all_neurons) if neurons is None else [str(n) for n in neurons]
        absent = [n for n in wanted if n not in index]
        if absent:
            raise InputDataError(self.path, f"has no labels for {absent} (stale plan?)")
        self.neuron_ids = np.asarray(wanted, dtype=str)
        self.rows = [index[n] for n in wanted]

    def read(self, start: int, stop: int) -> np.ndarray:
        """(neuron, image) float32: the labels of pool images start..stop-1."""
        if not 0 <= start < stop <= self.n_images:
            raise IndexError(f"{self.path}: images {start}..{stop} outside the pool's {self.n_images}")
        labels = np.asarray(self.variable[:, start:stop], dtype=np.float32)[self.rows]
        if not np.all(np.isfinite(labels)):
            raise InputDataError(self.path, f"labels of pool images {start}..{stop - 1} are not all finite")
        return labels

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> TeacherLabels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def teacher_neurons(path: str | Path) -> np.ndarray:
    """The neuron ids a teacher-label file labels (without reading the labels)."""
    with TeacherLabels(path) as labels:
        return labels.neuron_ids


def read_teacher_labels(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels (neuron, image) float32, neuron ids, held-out start), all in memory: for small pools and tests."""
    with TeacherLabels(path) as labels:
        return labels.read(0, labels.n_images), labels.neuron_ids, labels.heldout_start
