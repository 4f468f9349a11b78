"""Ingest of the published format of Cowley et al. 2023 (zip of JPEGs + npy responses) -> session dataset."""

from __future__ import annotations

import io
import logging
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from compactcortex.errors import InputDataError
from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset
from compactcortex.preprocess import preprocess_settings, unit_areas
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)

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


def ingest_cowley_session(
    root: str | Path,
    session: str,
    output_path: str | Path,
    *,
    params: Mapping[str, Any],
    seed: int,
    monkey: str,
    area: str | None = None,
) -> None:
    """Convert one session of the published data into the session dataset (``area``: the configured area, which
    must be the data's, V4)."""
    params = preprocess_settings(params)
    paths = cowley_paths(root, session)
    for path in paths.values():
        if not path.is_file():
            raise InputDataError(path, f"file of session {session} not found")
    images, indices = read_image_zip(paths["images"])
    responses, response_kind = session_responses(paths)
    if responses.shape[1] != images.shape[0]:
        raise InputDataError(
            paths["images"],
            f"holds {images.shape[0]} images but {paths['averaged'].name} has responses to {responses.shape[1]}",
        )
    source = paths["averaged"] if response_kind == "repeat_averaged" else paths["raw"]
    dataset = build_session_dataset(
        source=source,
        session=session,
        monkey=monkey,
        responses=responses,
        images=images,
        neuron_ids=np.asarray([f"{session}_n{index:03d}" for index in range(responses.shape[0])]),
        image_ids=np.asarray([f"image{index:04d}" for index in indices]),
        image_types=np.full(images.shape[0], "unknown"),
        source_index=indices - 1,
        response_kind=response_kind,
        latency_ms=params["latency_ms"],
        window_ms=params["window_ms"],
        reliability_splits=params["reliability_splits"],
        min_reliability=params["min_reliability"],
        seed=int(rng_for(seed, session, "reliability").integers(2**31)),
        area=unit_areas(source, np.full(responses.shape[0], PUBLISHED_AREA), area),
        on_silent_neuron=params["on_silent_neuron"],
        history=(
            "compactcortex.ingest_cowley: converted from the published format of Cowley et al. 2023 "
            f"({', '.join(sorted(path.name for path in paths.values()))})"
        ),
        attrs={
            **provenance_attrs(
                {"preprocess": params, "seed": seed, "monkey": monkey, "area": area}, list(paths.values())
            ),
            "source_format": "cowley2023",
            "citation": "Cowley, Stan, Pillow & Smith, Compact deep neural network models of visual cortex (2023)",
            "license": "GPL-3.0 (source data)",
        },
    )
    write_session_dataset(dataset, output_path, params["compression_level"])
    log.info("%s: %d neurons, %d images (%s)", output_path, *dataset["responses"].shape[:2], response_kind)
