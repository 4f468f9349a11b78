"""The published data of Cowley et al. 2023 as stored on disk (read only: this pipeline never writes it).

Layout under ``root`` (see ``shared/data/cowley2023/README.md``): per session ``images/images_<session>.zip`` (a zip
of ``imageNNNN.jpg``), ``responses_repeat_averaged/responses_<session>.npy`` (neuron x image) and, where published,
``responses_raw/responses_<session>.npy`` (neuron x image x repeat); the compact models as
``compact_models_torch/compact_model_<session>_neuron<i>.pt`` (a float64 state dict) with
``compact_models_nums_filters/compact_model_<session>_neuron<i>.npy`` (the five per-layer filter counts); and the
interoperability fixture ``reference_predictions.npz``.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from compactcortex.errors import InputDataError
from compactcortex.models.compact import IMAGE_SIZE, N_LAYERS

PUBLISHED_AREA = "V4"  # every session of the published data (Cowley et al. 2023) was recorded in V4
IMAGE_NAME = re.compile(r"(?:^|/)image(\d+)\.jpe?g$", re.IGNORECASE)


def cowley_paths(root: str | Path, session: str) -> dict[str, Path]:
    """The files of one session in the published layout (responses_raw only where it exists)."""
    root = Path(root)
    paths = {
        "images": root / "images" / f"images_{session}.zip",
        "averaged": root / "responses_repeat_averaged" / f"responses_{session}.npy",
    }
    raw = root / "responses_raw" / f"responses_{session}.npy"
    if raw.exists():
        paths["raw"] = raw
    return paths


def read_image_zip(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode a zip of imageNNNN.jpg files, in index order. Returns (images uint8, 1-based indices)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [(IMAGE_NAME.search(name), name) for name in archive.namelist()]
            numbered = sorted((int(match.group(1)), name) for match, name in members if match)
            _check_indices(path, [index for index, _ in numbered])
            images = [_decode_jpeg(path, name, archive.read(name)) for _, name in numbered]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputDataError(path, f"cannot be read as a zip of images (corrupt or truncated?): {exc}") from exc
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise InputDataError(path, f"images differ in size: {sorted(shapes)}")
    return np.stack(images), np.asarray([index for index, _ in numbered])


def _check_indices(path: Path, indices: list[int]) -> None:
    if not indices:
        raise InputDataError(path, "holds no imageNNNN.jpg files")
    values, counts = np.unique(indices, return_counts=True)
    if np.any(counts > 1):
        raise InputDataError(path, f"duplicate image ids: image{values[counts > 1][0]:04d} appears more than once")
    missing = sorted(set(range(1, values.max() + 1)) - set(values.tolist()))
    if missing:
        raise InputDataError(path, f"missing images: image{missing[0]:04d}.jpg (and {len(missing) - 1} more)")


def _decode_jpeg(path: Path, name: str, data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise InputDataError(path, f"{name} cannot be decoded as JPEG: {exc}") from exc


def load_response_array(path: str | Path, ndim: int) -> np.ndarray:
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputDataError(path, f"cannot be read as a .npy array (corrupt or truncated?): {exc}") from exc
    if array.ndim != ndim:
        raise InputDataError(path, f"expected a {ndim}-d response array, got shape {array.shape}")
    return np.asarray(array, dtype=np.float64)


def session_responses(paths: Mapping[str, Path]) -> tuple[np.ndarray, str]:
    """Single-trial responses where the raw file exists (checked against the averages), else the averages."""
    averaged = load_response_array(paths["averaged"], ndim=2)
    if "raw" not in paths:
        return averaged[:, :, None], "repeat_averaged"
    raw = load_response_array(paths["raw"], ndim=3)
    if raw.shape[:2] != averaged.shape:
        raise InputDataError(
            paths["raw"], f"shape {raw.shape} disagrees with {paths['averaged'].name} {averaged.shape}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN images are reported as a mismatch below
        mean = np.nanmean(raw, axis=2)
    if not np.allclose(mean, averaged, rtol=0, atol=1e-9, equal_nan=False):
        raise InputDataError(paths["raw"], f"its mean over repeats disagrees with {paths['averaged'].name}")
    return raw, "single_trial"


MODEL_NAME = re.compile(r"^compact_model_(\d+)_neuron(\d+)\.pt$")
REFERENCE_KEYS = ("session", "neuron", "image_index", "predictions")


def model_paths(root: str | Path, session: str, neuron: int) -> tuple[Path, Path]:
    """(state dict .pt, filter counts .npy) of one published model."""
    name = f"compact_model_{session}_neuron{int(neuron)}"
    root = Path(root)
    return root / "compact_models_torch" / f"{name}.pt", root / "compact_models_nums_filters" / f"{name}.npy"


def published_models(root: str | Path) -> list[tuple[str, int]]:
    """The (session, neuron) pairs with a published state dict, sorted by session then neuron number."""
    folder = Path(root) / "compact_models_torch"
    if not folder.is_dir():
        return []
    matches = (MODEL_NAME.match(path.name) for path in folder.iterdir())
    return sorted((m.group(1), int(m.group(2))) for m in matches if m)


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
