"""The virtual lab's ground-truth V4 population: its parameters and their checks, rates, subsets, save/load."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from compactcortex import stimuli
from compactcortex.errors import InputDataError
from compactcortex.lab.front_end import FrontEnd
from compactcortex.lab.neuron_kinds import KINDS, Group

FORMAT_VERSION = 1
MAX_SUBUNITS = 4

_INT_PARAMETERS = ("scale", "scale2", "n_sub", "polarity")
VECTOR_PARAMETERS = ("sub_dx", "sub_dy", "sub_ori")
PARAMETERS = (
    "rf_x", "rf_y", "rf_sigma", "surround_ratio", "surround_k",
    "scale", "scale2", "n_sub", "sub_dx", "sub_dy", "sub_ori", "sub_sigma", "xori_k",
    "ori1", "ori2", "local_sigma",
    "hue", "hue_threshold", "colour_edge", "lum_mod",
    "polarity", "edge_k", "clutter_k", "half_saturation", "local_power", "expo",
    "gamma", "c_sat", "baseline", "peak", "drive_lo", "drive_hi",
)  # fmt: skip


def is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_images(images: np.ndarray, image_size: int) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be shaped (n, size, size, 3), got {images.shape}")
    if images.shape[1] != image_size:
        raise ValueError(f"images are {images.shape[1]} px but these neurons were built for {image_size} px")
    return images


class VirtualNeurons:
    """A population of ground-truth V4-like neurons: parameters (numpy arrays, one row per neuron), their
    kinds and the image size they see. ``rates(images)`` gives noiseless rates in spikes/s."""

    def __init__(self, image_size: int, kind: Sequence[str] | np.ndarray, params: Mapping[str, np.ndarray]) -> None:
        if not is_int(image_size) or image_size < stimuli.MIN_SIZE:
            raise ValueError(f"image_size must be an integer >= {stimuli.MIN_SIZE}, got {image_size!r}")
        self.image_size = int(image_size)
        self.kind = np.asarray(kind).astype(str)
        if self.kind.ndim != 1:
            raise ValueError("kind must be one-dimensional")
        bad = sorted(set(self.kind) - set(KINDS))
        if bad:
            raise ValueError(f"unknown neuron kind(s) {bad}; valid kinds are {list(KINDS)}")
        self.kind.setflags(write=False)
        self.params = _checked_parameters(params, len(self.kind))
        self._groups: list[tuple[np.ndarray, Group]] | None = None
        self._front: FrontEnd | None = None

    def __len__(self) -> int:
        return len(self.kind)

    def __repr__(self) -> str:
        counts = {k: int((self.kind == k).sum()) for k in KINDS}
        return f"VirtualNeurons(n={len(self)}, image_size={self.image_size}, kinds={counts})"

    def __getattr__(self, name: str) -> np.ndarray:
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(name)

    # ------------------------------------------------------------------ compute
    def _compiled(self) -> tuple[FrontEnd, list[tuple[np.ndarray, Group]]]:
        """The front end and one computing group per kind present (built once, on first use)."""
        if self._front is None or self._groups is None:
            self._front = FrontEnd(self.image_size)
            self._groups = []
            for kind in KINDS:
                index = np.flatnonzero(self.kind == kind)
                if index.size:
                    params = {name: values[index] for name, values in self.params.items()}
                    self._groups.append((index, Group(self._front, kind, params)))
        return self._front, self._groups

    def drives(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Raw, uncalibrated drives (neuron, image), before the output nonlinearity."""
        images = check_images(images, self.image_size)
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        front, groups = self._compiled()
        out = np.empty((len(self), len(images)), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                features = front(images[start : start + batch_size])
                for index, group in groups:
                    out[index, start : start + batch_size] = group.drive(features).double().numpy().T
        return out

    def rates(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Noiseless firing rates (spikes/s), float64 shaped (neuron, image), for uint8 images
        shaped (n, image_size, image_size, 3), computed batch_size images at a time.

        Deterministic: the same parameters and images give the same rates, bit for bit (also after
        save/load). The front end runs in float32, so splitting the images into other batches or the
        neurons into other subsets may change rates by ~1e-5 spikes/s.
        """
        return self._output(self.drives(images, batch_size))

    def _output(self, drive: np.ndarray) -> np.ndarray:
        """Calibrated output nonlinearity: baseline + (peak - baseline) * h(z), with z = 0 at drive_lo and
        1 at drive_hi, h(z) = z^gamma (1 + c) / (z^gamma + c): a power law that saturates softly at
        (1 + c) times the peak's rise above baseline."""
        p = self.params
        col = (slice(None), None)
        z = np.maximum((drive - p["drive_lo"][col]) / (p["drive_hi"] - p["drive_lo"])[col], 0.0)
        zg, c = z ** p["gamma"][col], p["c_sat"][col]
        return p["baseline"][col] + (p["peak"] - p["baseline"])[col] * zg * (1.0 + c) / (zg + c)

    # ------------------------------------------------------------------ population handling
    def subset(self, indices: Sequence[int] | np.ndarray) -> VirtualNeurons:
        """The neurons at ``indices`` (integer indices or a boolean mask), as a new population."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"boolean mask must have length {len(self)}, got shape {index.shape}")
            index = np.flatnonzero(index)
        if index.ndim != 1 or (index.size and not np.issubdtype(index.dtype, np.integer)):
            raise ValueError("indices must be a 1-D array of integers or a boolean mask")
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise ValueError(f"indices out of range for {len(self)} neurons")
        index = index.astype(np.int64)
        return VirtualNeurons(self.image_size, self.kind[index], {k: v[index] for k, v in self.params.items()})

    def save(self, path: str | Path) -> None:
        """Write the parameters (and a format version) to one .npz file at exactly ``path``."""
        arrays = {f"param_{name}": values for name, values in self.params.items()}
        with open(path, "wb") as handle:
            np.savez(
                handle,
                format_version=np.int64(FORMAT_VERSION),
                image_size=np.int64(self.image_size),
                kind=self.kind.astype("<U16"),
                **arrays,
            )

    @classmethod
    def load(cls, path: str | Path) -> VirtualNeurons:
        """Rebuild a population saved by :meth:`save`; its rates are identical, bit for bit."""
        unreadable = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
        try:
            archive = np.load(path, allow_pickle=False)
        except unreadable as error:
            raise InputDataError(path, f"not a readable neuron parameter file ({error})") from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise InputDataError(path, "not a neuron parameter file (.npz archive expected)")
        with archive:
            try:
                contents = {name: archive[name] for name in archive.files}
            except unreadable as error:
                raise InputDataError(path, f"corrupt neuron parameter file ({error})") from error
        version = contents.get("format_version")
        if version is None or version.shape != () or int(version) != FORMAT_VERSION:
            raise InputDataError(path, f"neuron file format version {version} is not {FORMAT_VERSION}")
        missing = [n for n in ("image_size", "kind") if n not in contents]
        missing += [f"param_{n}" for n in PARAMETERS if f"param_{n}" not in contents]
        if missing:
            raise InputDataError(path, f"neuron file lacks {missing}")
        try:
            return cls(
                int(contents["image_size"]),
                contents["kind"],
                {name: contents[f"param_{name}"] for name in PARAMETERS},
            )
        except (ValueError, TypeError) as error:
            raise InputDataError(path, f"bad neuron parameters: {error}") from error


def _checked_parameters(params: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    missing = [name for name in PARAMETERS if name not in params]
    if missing:
        raise ValueError(f"missing neuron parameters {missing}")
    extra = sorted(set(params) - set(PARAMETERS))
    if extra:
        raise ValueError(f"unknown neuron parameters {extra}")
    out = {}
    for name in PARAMETERS:
        values = np.asarray(params[name])
        shape = (n, MAX_SUBUNITS) if name in VECTOR_PARAMETERS else (n,)
        if values.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {values.shape}, expected {shape}")
        if not np.issubdtype(values.dtype, np.number):
            raise ValueError(f"parameter {name!r} is not numeric")
        values = values.astype(np.int64 if name in _INT_PARAMETERS else np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"parameter {name!r} has non-finite values")
        values.setflags(write=False)
        out[name] = values
    _check_ranges(out)
    return out


def _check_ranges(p: Mapping[str, np.ndarray]) -> None:
    checks = {
        "rf_sigma": p["rf_sigma"] > 0,
        "sub_sigma": p["sub_sigma"] > 0,
        "local_sigma": p["local_sigma"] > 0,
        "half_saturation": p["half_saturation"] > 0,
        "scale": (p["scale"] >= 0) & (p["scale"] < 3),
        "scale2": (p["scale2"] >= 0) & (p["scale2"] < 3),
        "n_sub": (p["n_sub"] >= 1) & (p["n_sub"] <= MAX_SUBUNITS),
        "polarity": np.isin(p["polarity"], (-1, 0, 1)),
        "drive_hi": p["drive_hi"] > p["drive_lo"],
        "peak": p["peak"] > p["baseline"],
        "baseline": p["baseline"] >= 0,
        "gamma": p["gamma"] > 0,
        "c_sat": p["c_sat"] > 0,
    }
    bad = [name for name, ok in checks.items() if not np.all(ok)]
    if bad:
        raise ValueError(f"neuron parameters out of range: {bad}")
