"""The session dataset: one xarray Dataset per recording session, written as NetCDF.

Schema (README, "The session dataset"):
- responses(neuron, image, repeat) float32: spike counts per trial in the counting window; NaN where an
  image had fewer repeats. For repeat-averaged sources (response_kind = "repeat_averaged") the repeat
  dimension has length 1 and holds the published averages (float64, exact).
- images(image, y, x, channel) uint8 RGB.
- coordinates: neuron (ids), image (ids), repeat, channel, image_type(image), n_repeats(image),
  source_index(image) (the image's index in the source recording), and area(neuron) where neurons differ in area.
- per-neuron noise ceiling and z-scoring statistics (see NEURON_STATISTICS).
- attributes: session, monkey, area, response_kind, response_units, latency_ms, window_ms, seed,
  schema_version, dropped_neurons_json, the CF Conventions, title and history, the provenance (params_json,
  config_sha256, code_version, source files and sha256) and what the source's reader recorded.
Every variable and coordinate has a long_name and, where a unit exists, UDUNITS units (netcdf_metadata).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from compactcortex import metrics
from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError
from compactcortex.netcdf_metadata import VariableMetadata, with_cf_metadata

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
RESPONSE_KINDS = ("single_trial", "repeat_averaged")
SILENT_NEURON_POLICIES = ("drop", "error")
NEURON_STATISTICS = {
    "split_half_r": VariableMetadata(
        "split-half correlation of the repeat-mean response",
        "1",
        {"comment": "Mean correlation between the means of random halves of the repeats (uncorrected)."},
    ),
    "spearman_brown_reliability": VariableMetadata(
        "Spearman-Brown corrected split-half reliability (noise ceiling)",
        "1",
        {"comment": "split_half_r with the Spearman-Brown correction."},
    ),
    "trial_variance": VariableMetadata(
        "trial-to-trial variance of the spike count",
        "count2",
        {"comment": "sigma2 of r2_ER: mean over images of the across-repeat variance (ddof=1)."},
    ),
    "n_repeats_median": VariableMetadata("median number of repeats per image", "count", {"comment": "n of r2_ER."}),
    "repeat_mean_variance": VariableMetadata(
        "variance over images of the repeat-mean spike count", "count2", {"comment": "ddof=1."}
    ),
    "explainable_variance_fraction": VariableMetadata(
        "explainable variance fraction",
        "1",
        {"comment": "Share of the repeat-mean variance that is not trial noise: (var(mean) - sigma2/n) / var(mean)."},
    ),
    "zscore_mean": VariableMetadata("mean over images of the repeat-mean spike count", "count"),
    "zscore_std": VariableMetadata("standard deviation over images of the repeat-mean spike count", "count"),
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
    area: str | Sequence[str] = "unknown",
    on_silent_neuron: str = "drop",
    history: str = "compactcortex.io.session_dataset: session dataset assembled",
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Check the arrays, leave out silent neurons, compute the per-neuron statistics and assemble the dataset.

    `source` names the file the arrays came from, for error messages. `area` is the neurons' brain area: one
    for all, or one per neuron (then, where they differ, an area(neuron) coordinate is added). Silent neurons
    (see silent_neurons) are dropped and listed in the attribute dropped_neurons_json, or with
    on_silent_neuron="error" are an error. `history` is the CF history text (deterministic: no dates).
    """
    responses = np.asarray(responses, dtype=np.float64)
    images = np.asarray(images)
    neuron_ids = np.asarray(neuron_ids).astype(str)
    image_ids = np.asarray(image_ids).astype(str)
    areas = np.asarray(area).astype(str)
    _check_arrays(source, responses, images, neuron_ids, image_ids, np.asarray(image_types), response_kind)
    if areas.ndim == 0:
        areas = np.full(neuron_ids.shape, str(areas))
    elif areas.shape != neuron_ids.shape:
        raise InputDataError(source, f"{neuron_ids.size} neurons but {areas.size} areas")
    if on_silent_neuron not in SILENT_NEURON_POLICIES:
        raise ValueError(f"on_silent_neuron must be one of {SILENT_NEURON_POLICIES}, not {on_silent_neuron!r}")
    reasons = silent_neurons(responses)
    dropped = [{"neuron": str(neuron_ids[index]), "reason": reason} for index, reason in reasons.items()]
    if dropped:
        listing = "; ".join(f"{item['neuron']} ({item['reason']})" for item in dropped[:10])
        if on_silent_neuron == "error":
            raise InputDataError(
                source,
                f"silent neurons (nothing to model): {listing}. "
                "Set preprocess.on_silent_neuron: drop to leave them out",
            )
        if len(dropped) == neuron_ids.size:
            raise InputDataError(source, f"every neuron is silent (nothing to model): {listing}")
        log.warning("%s: %d silent neurons left out: %s", source, len(dropped), listing)
        kept = np.setdiff1d(np.arange(neuron_ids.size), list(reasons))
        responses, neuron_ids, areas = responses[kept], neuron_ids[kept], areas[kept]
    n_repeats = np.max(np.sum(np.isfinite(responses), axis=2), axis=0).astype(np.int16)
    repeat_mean = np.nanmean(responses, axis=2)
    statistics = _noise_ceiling(responses, response_kind, reliability_splits, seed)
    statistics["zscore_mean"] = repeat_mean.mean(axis=1)
    statistics["zscore_std"] = repeat_mean.std(axis=1, ddof=1)
    reliability = statistics["spearman_brown_reliability"]
    reliable = np.where(np.isnan(reliability), True, reliability >= min_reliability)
    data_vars = {
        "responses": (("neuron", "image", "repeat"), responses.astype(_response_dtype(response_kind))),
        "images": (("image", "y", "x", "channel"), images),
        **{name: ("neuron", np.asarray(statistics[name], np.float64)) for name in NEURON_STATISTICS},
        "reliable": ("neuron", reliable.astype(np.int8)),
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
    session_areas = sorted(set(areas.tolist()))
    if len(session_areas) > 1:
        coords["area"] = ("neuron", areas)
    dataset_attrs = {
        "session": session,
        "monkey": monkey,
        "area": ",".join(session_areas),
        "response_kind": response_kind,
        "response_units": "spike count in the counting window",
        "latency_ms": float(latency_ms),
        "window_ms": float(window_ms),
        "min_reliability": float(min_reliability),
        "reliability_splits": int(reliability_splits),
        "seed": int(seed),
        "schema_version": SCHEMA_VERSION,
        "dropped_neurons_json": json.dumps(dropped),
        **dict(attrs or {}),
    }
    dataset = xr.Dataset(data_vars, coords=coords, attrs=dataset_attrs)
    title = (
        f"Session {session} ({monkey}, {dataset_attrs['area']}): responses of {neuron_ids.size} neurons "
        f"to {image_ids.size} images"
    )
    return with_cf_metadata(dataset, _variable_metadata(response_kind, min_reliability), title=title, history=history)


def silent_neurons(responses: np.ndarray) -> dict[int, str]:
    """Neurons that give a model nothing to fit, by index, with the reason: no spikes counted at all, or the
    same repeat-mean response to every image (zero variance across images)."""
    repeat_mean = np.nanmean(responses, axis=2)
    spread = repeat_mean.std(axis=1, ddof=1)
    reasons = {}
    for index in np.flatnonzero(~(spread > 0)):
        if np.nansum(responses[index]) == 0:
            reasons[int(index)] = "no spikes in any counting window"
        else:
            reasons[int(index)] = "the same repeat-mean response to every image"
    return reasons


def _variable_metadata(response_kind: str, min_reliability: float) -> dict[str, VariableMetadata]:
    responses = (
        "spike count per trial in the counting window"
        if response_kind == "single_trial"
        else "spike count in the counting window, averaged over repeats"
    )
    return {
        "responses": VariableMetadata(responses, "count"),
        "images": VariableMetadata("stimulus image (RGB pixel value, 0-255)", "1"),
        **NEURON_STATISTICS,
        "reliable": VariableMetadata(
            f"1 where spearman_brown_reliability >= {min_reliability} (or it is unknown)",
            None,
            {"flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "unreliable reliable"},
        ),
        "neuron": VariableMetadata("neuron id"),
        "image": VariableMetadata("image id"),
        "repeat": VariableMetadata("repeat number of the image, in presentation order"),
        "channel": VariableMetadata("colour channel"),
        "image_type": VariableMetadata("image type"),
        "n_repeats": VariableMetadata("number of repeats recorded for the image", "count"),
        "source_index": VariableMetadata("index of the image in the source (see the attribute image_order)"),
        "area": VariableMetadata("brain area of the neuron"),
    }


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
    if n_images < 2:
        fail(f"responses to {n_images} image(s): a neuron's tuning needs at least 2 images")
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


def repeat_means(path: str | Path) -> pd.DataFrame:
    """image x neuron table of the repeat-averaged responses of a session dataset (e.g. a closed-loop session)."""
    with open_session_dataset(path) as dataset:
        values = dataset["responses"].mean("repeat", skipna=True).transpose("image", "neuron")
        return pd.DataFrame(
            values.values, index=values["image"].values.astype(str), columns=values["neuron"].values.astype(str)
        )
