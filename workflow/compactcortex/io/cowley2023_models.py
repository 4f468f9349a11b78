"""The published compact models of Cowley et al. 2023 as stored on disk (read only): a float64 state dict and the
five per-layer filter counts per model, the session images they take (112 px), and the interoperability fixture
``reference_predictions.npz`` (where the files lie: ``io.cowley2023``)."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import cowley_paths, read_image_zip
from compactcortex.models.compact import IMAGE_SIZE, N_LAYERS

REFERENCE_KEYS = ("session", "neuron", "image_index", "predictions")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of finite tensors, or InputDataError naming the file."""
    if not path.is_file():
        raise InputDataError(path, "no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise InputDataError(path, f"cannot be read as a PyTorch state dict (corrupt or truncated?): {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputDataError(path, f"is not a state dict of tensors (got {type(state).__name__})")
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise InputDataError(path, f"{key} holds non-finite values")
    return dict(state)


def read_filter_counts(path: Path) -> tuple[int, ...]:
    """The five per-layer filter counts of a published model."""
    try:
        counts = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputDataError(path, f"cannot be read as a .npy array of filter counts: {exc}") from exc
    if counts.shape != (N_LAYERS,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise InputDataError(path, f"expected {N_LAYERS} positive integer filter counts, got {counts.dtype} {counts}")
    return tuple(int(c) for c in counts)


def read_session_images(root: str | Path, session: str, indices: Sequence[int] | None = None) -> np.ndarray:
    """A session's images, uint8 (n, 112, 112, 3); ``indices`` are the 1-based image numbers (all when None)."""
    path = cowley_paths(root, session)["images"]
    if not path.is_file():
        raise InputDataError(path, "no such image zip")
    images, numbers = read_image_zip(path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise InputDataError(path, f"expected {IMAGE_SIZE} x {IMAGE_SIZE} RGB images, got {images.shape[1:]}")
    if indices is None:
        return images
    wanted = np.asarray(indices, dtype=np.int64)
    position = {int(n): i for i, n in enumerate(numbers)}
    absent = [int(i) for i in wanted if int(i) not in position]
    if absent:
        raise InputDataError(path, f"has no image{absent[0]:04d}.jpg (image indices are 1-based)")
    return images[[position[int(i)] for i in wanted]]


def read_reference_fixture(path: Path) -> dict[str, np.ndarray]:
    """The fixture: session, neuron (one per model), image_index (1-based), predictions (models x images)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            fixture = {key: archive[key] for key in REFERENCE_KEYS}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        keys = ", ".join(REFERENCE_KEYS)
        raise InputDataError(path, f"cannot be read as the reference predictions ({keys}): {exc}") from exc
    expected = (fixture["session"].size, fixture["image_index"].size)
    if fixture["neuron"].size != expected[0] or fixture["predictions"].shape != expected:
        raise InputDataError(path, f"predictions have shape {fixture['predictions'].shape}, expected {expected}")
    return fixture
