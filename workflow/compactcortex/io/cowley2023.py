"""The published data of Cowley et al. 2023 as stored on disk: the recordings' files, and where the compact models
lie (their contents: ``io.cowley2023_models``). Read only: this pipeline never writes them.

Layout under ``root`` (see ``shared/data/cowley2023/README.md``): per session ``images/images_<session>.zip`` (a zip
of ``imageNNNN.jpg``), ``responses_repeat_averaged/responses_<session>.npy`` (neuron x image) and, where published,
``responses_raw/responses_<session>.npy`` (neuron x image x repeat); the compact models as
``compact_models_torch/compact_model_<session>_neuron<i>.pt`` (a float64 state dict) with
``compact_models_nums_filters/compact_model_<session>_neuron<i>.npy`` (the five per-layer filter counts); and the
interoperability fixture ``reference_predictions.npz``.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from compactcortex.errors import InputDataError

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


def response_shape(root: str | Path, session: str) -> tuple[int, int]:
    """(neurons, images) of a published session, read from its file's header (the array is not loaded)."""
    path = cowley_paths(root, session)["averaged"]
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputDataError(path, f"cannot be read as a .npy array (corrupt or truncated?): {exc}") from exc
    if array.ndim != 2:
        raise InputDataError(path, f"expected a 2-d response array, got shape {array.shape}")
    return int(array.shape[0]), int(array.shape[1])
