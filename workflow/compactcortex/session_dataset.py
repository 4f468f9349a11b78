"""The session dataset: one xarray Dataset per recording session, written as NetCDF.

Schema (README, "The session dataset"):
- responses(neuron, image, repeat) float32: spike counts per trial in the counting window; NaN where an
  image had fewer repeats. For repeat-averaged sources (response_kind = "repeat_averaged") the repeat
  dimension has length 1 and holds the published averages (float64, exact).
- images(image, y, x, channel) uint8 RGB.
- coordinates: neuron (ids), image (ids), repeat, channel, image_type(image), n_repeats(image),
  source_index(image) (the image's index in the source recording).
- per-neuron noise ceiling and z-scoring statistics (see NEURON_STATISTICS).
- attributes: session, monkey, area, response_kind, response_units, latency_ms, window_ms, seed,
  schema_version and the provenance (params_json, config_sha256, code_version, source files and sha256).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from compactcortex import metrics
from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError

SCHEMA_VERSION = "1"
RESPONSE_KINDS = ("single_trial", "repeat_averaged")
NEURON_STATISTICS = {
    "split_half_r": "Mean correlation between the means of random halves of the repeats (uncorrected).",
    "spearman_brown_reliability": "Split-half reliability with the Spearman-Brown correction (noise ceiling).",
    "trial_variance": "sigma2 of r2_ER: mean over images of the across-repeat variance (ddof=1).",
    "n_repeats_median": "n of r2_ER: median number of repeats over images.",
    "repeat_mean_variance": "Variance over images of the repeat-mean response (ddof=1).",
    "explainable_variance_fraction": "Share of the repeat-mean variance that is not trial noise.",
    "zscore_mean": "Mean over images of the repeat-mean response (z-scoring statistic).",
    "zscore_std": "Standard deviation over images of the repeat-mean response (z-scoring statistic).",
}
REQUIRED_VARIABLES = {
    "responses": ("neuron", "image", "repeat"),
    "images": ("image", "y", "x", "channel"),
    **{name: ("neuron",) for name in NEURON_STATISTICS},
    "reliable": ("neuron",),
}
REQUIRED_ATTRS = ("session", "monkey", "response_kind", "latency_ms", "window_ms", "config_sha256", "code_version")


def build_session_dataset(
    *,
    source: str | Path,
    session: str,
    monkey: str,
    responses: np.ndarray,
    images: np.ndarray,
    neuron_ids: np.ndarray,
    image_ids: np.ndarray,
    image_types: np.ndarray,
    response_kind: str,
    latency_ms: float,
    window_ms: float,
    reliability_splits: int,
    min_reliability: float,
    seed: int,
    source_index: np.ndarray | None = None,
    area: str = "V4",
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Check the arrays, compute the per-neuron statistics and assemble the session dataset.

    `source` names the file the arrays came from, for error messages.
    """
    responses = np.asarray(responses, dtype=np.float64)
    images = np.asarray(images)
    neuron_ids = np.asarray(neuron_ids).astype(str)
    image_ids = np.asarray(image_ids).astype(str)
    _check_arrays(source, responses, images, neuron_ids, image_ids, np.asarray(image_types), response_kind)
    n_repeats = np.max(np.sum(np.isfinite(responses), axis=2), axis=0).astype(np.int16)
    repeat_mean = np.nanmean(responses, axis=2)
    zscore_std = repeat_mean.std(axis=1, ddof=1)
    silent = neuron_ids[~(zscore_std > 0)]
    if silent.size:
        raise InputDataError(
            source, f"neurons with zero variance across images (nothing to model): {', '.join(silent[:10])}"
        )
    statistics = _noise_ceiling(responses, response_kind, reliability_splits, seed)
    statistics["zscore_mean"] = repeat_mean.mean(axis=1)
    statistics["zscore_std"] = zscore_std
    reliability = statistics["spearman_brown_reliability"]
    reliable = np.where(np.isnan(reliability), True, reliability >= min_reliability)
    data_vars = {
        "responses": (
            ("neuron", "image", "repeat"),
            responses.astype(_response_dtype(response_kind)),
            {
                "long_name": "spike count per trial in the counting window",
                "units": "spikes",
            },
        ),
        "images": (("image", "y", "x", "channel"), images, {"long_name": "stimulus image", "units": "pixel value"}),
        **{
            name: ("neuron", np.asarray(statistics[name], np.float64), {"long_name": text})
            for name, text in NEURON_STATISTICS.items()
        },
        "reliable": (
            "neuron",
            reliable.astype(np.int8),
            {
                "long_name": f"1 where spearman_brown_reliability >= {min_reliability} (or it is unknown)",
            },
        ),
    }
    coords = {
        "neuron": neuron_ids,
        "image": image_ids,
        "repeat": np.arange(responses.shape[2], dtype=np.int16),
        "channel": np.array(["R", "G", "B"]),
        "image_type": ("image", np.asarray(image_types).astype(str)),
        "n_repeats": ("image", n_repeats),
        "source_index": ("image", np.arange(len(image_ids)) if source_index is None else np.asarray(source_index)),
    }
    dataset_attrs = {
        "session": session,
        "monkey": monkey,
        "area": area,
        "response_kind": response_kind,
        "response_units": "spike count in the counting window",
        "latency_ms": float(latency_ms),
        "window_ms": float(window_ms),
        "min_reliability": float(min_reliability),
        "reliability_splits": int(reliability_splits),
        "seed": int(seed),
        "schema_version": SCHEMA_VERSION,
        **dict(attrs or {}),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=dataset_attrs)


def _response_dtype(response_kind: str) -> type:
    """Spike counts are exact in float32; published averages keep float64 so they round-trip exactly."""
    return np.float32 if response_kind == "single_trial" else np.float64


def _check_arrays(
    source: str | Path,
    responses: np.ndarray,
    images: np.ndarray,
    neuron_ids: np.ndarray,
    image_ids: np.ndarray,
    image_types: np.ndarray,
    response_kind: str,
) -> None:
    def fail(problem: str) -> None:
        raise InputDataError(source, problem)

    if response_kind not in RESPONSE_KINDS:
        fail(f"unknown response kind '{response_kind}' (expected one of {RESPONSE_KINDS})")
    if responses.ndim != 3:
        fail(f"responses must be (neuron, image, repeat), got shape {responses.shape}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        fail(f"images must be uint8 (image, y, x, 3), got {images.dtype} {images.shape}")
    n_neurons, n_images, _ = responses.shape
    if n_neurons == 0:
        fail("no neurons")
    if images.shape[0] != n_images:
        fail(f"responses cover {n_images} images but there are {images.shape[0]} images")
    if image_ids.shape != (n_images,) or image_types.shape != (n_images,):
        fail(f"{n_images} images but {image_ids.size} image ids and {image_types.size} image types")
    if neuron_ids.shape != (n_neurons,):
        fail(f"{n_neurons} neurons in the responses but {neuron_ids.size} neuron ids")
    for what, ids in (("image", image_ids), ("neuron", neuron_ids)):
        values, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            fail(f"duplicate {what} ids: {', '.join(values[counts > 1][:10])}")
    if np.any(np.isinf(responses)):
        fail("responses contain infinite values")
    finite = np.isfinite(responses)
    if np.any(responses[finite] < 0):
        fail("responses contain negative spike counts")
    if response_kind == "repeat_averaged" and not np.all(finite):
        where = np.argwhere(~finite)[0]
        fail(f"repeat-averaged responses contain NaN (neuron {neuron_ids[where[0]]}, image {image_ids[where[1]]})")
    no_data = ~np.any(finite, axis=2)
    if np.any(no_data):
        neuron, image = np.argwhere(no_data)[0]
        fail(f"neuron {neuron_ids[neuron]} has no response (all NaN) to image {image_ids[image]}")


def _noise_ceiling(
    responses: np.ndarray, response_kind: str, reliability_splits: int, seed: int
) -> dict[str, np.ndarray]:
    """The r2_ER denominator terms and the split-half reliability; NaN where repeats are not available."""
    n_neurons = responses.shape[0]
    nan = np.full(n_neurons, np.nan)
    if response_kind != "single_trial":
        return {name: nan for name in NEURON_STATISTICS}
    terms = metrics.r2_er_terms(responses)
    halves = metrics.split_half_reliability(responses, n_splits=reliability_splits, seed=seed)
    return {
        "split_half_r": halves["split_half_r"],
        "spearman_brown_reliability": halves["spearman_brown"],
        "trial_variance": terms["trial_variance"],
        "n_repeats_median": terms["n_repeats"],
        "repeat_mean_variance": terms["repeat_mean_variance"],
        "explainable_variance_fraction": terms["explainable_variance_fraction"],
    }


def write_session_dataset(dataset: xr.Dataset, path: str | Path, compression_level: int = 4) -> None:
    """Write atomically, compressed and chunked by blocks of images (so reading a subset is cheap)."""
    n_neurons, n_images, n_repeats = dataset["responses"].shape
    compress = {"zlib": compression_level > 0, "complevel": compression_level, "shuffle": True}
    encoding = {
        "responses": {**compress, "chunksizes": (n_neurons, min(n_images, 1024), n_repeats)},
        "images": {**compress, "chunksizes": (min(n_images, 64), *dataset["images"].shape[1:])},
    }
    with atomic_path(path) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4", encoding=encoding)


def open_session_dataset(path: str | Path) -> xr.Dataset:
    """Open a session dataset, checking that it is readable and follows the schema."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "session dataset not found")
    try:
        dataset = xr.open_dataset(path, engine="netcdf4")
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError for corrupt files
        raise InputDataError(
            path, f"cannot be read as a NetCDF session dataset (corrupt or truncated?): {exc}"
        ) from exc
    validate_session_dataset(dataset, path)
    return dataset


def validate_session_dataset(dataset: xr.Dataset, path: str | Path) -> None:
    for name, dims in REQUIRED_VARIABLES.items():
        if name not in dataset:
            raise InputDataError(path, f"not a session dataset: variable '{name}' is missing")
        if dataset[name].dims != dims:
            raise InputDataError(path, f"variable '{name}' has dims {dataset[name].dims}, expected {dims}")
    missing = [name for name in REQUIRED_ATTRS if name not in dataset.attrs]
    if missing:
        raise InputDataError(path, f"not a session dataset: attributes missing: {', '.join(missing)}")
    if dataset.attrs.get("schema_version") != SCHEMA_VERSION:
        raise InputDataError(
            path, f"schema version {dataset.attrs.get('schema_version')!r}, this code reads {SCHEMA_VERSION!r}"
        )
