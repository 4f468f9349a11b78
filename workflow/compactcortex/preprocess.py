"""Preprocessing: an NWB recording -> the session dataset (spike counts per trial, noise ceiling)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from compactcortex.config import load_schema
from compactcortex.errors import InputDataError
from compactcortex.io.session_dataset import build_session_dataset
from compactcortex.provenance import provenance_attrs
from compactcortex.recording import Recording
from compactcortex.seeding import rng_for
from compactcortex.spike_counts import count_spikes

log = logging.getLogger(__name__)

# Windows that abut (next start == this stop) can differ by a rounding error in seconds; far below any spike
# time resolution, so such a sliver is not an overlap.
OVERLAP_TOLERANCE_S = 1e-9


def preprocess_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` (the config's preprocess section) with the schema's default for each key left out: the workflow
    passes the whole section, callers such as tests and benchmarks only the keys they care about."""
    properties = load_schema()["properties"]["preprocess"]["properties"]
    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    return {**defaults, **params}


def counting_windows(recording: Recording, latency_ms: float, window_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's counting window [onset + latency, onset + latency + window), seconds."""
    start = recording.trial_onset + latency_ms / 1000.0
    return start, start + window_ms / 1000.0


def trial_responses(recording: Recording, latency_ms: float, window_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts arranged as (neuron, image, repeat), NaN-padded, for the images shown at least once.

    Repeats of an image are numbered in presentation order. Returns the responses and the indices
    (into recording.images) of the images they cover.
    """
    counts = count_spikes(
        recording.spike_times, recording.unit_bounds, *counting_windows(recording, latency_ms, window_ms)
    )
    shown, image_of_trial = np.unique(recording.trial_image, return_inverse=True)
    order = np.lexsort((recording.trial_onset, image_of_trial))
    sorted_image = image_of_trial[order]
    first_of_image = np.searchsorted(sorted_image, np.arange(shown.size))
    repeat_of_sorted = np.arange(order.size) - first_of_image[sorted_image]
    responses = np.full((recording.n_units, shown.size, repeat_of_sorted.max() + 1), np.nan, dtype=np.float64)
    responses[:, sorted_image, repeat_of_sorted] = counts[:, order]
    return responses, shown


def overlapping_windows(recording: Recording, latency_ms: float, window_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Trials (positions) whose counting window overlaps that of the trial after them (in onset order), and
    those next trials: spikes in the overlap would be counted for both."""
    start, stop = counting_windows(recording, latency_ms, window_ms)
    order = np.argsort(recording.trial_onset, kind="stable")
    overlap = np.flatnonzero(start[order[1:]] < stop[order[:-1]] - OVERLAP_TOLERANCE_S)
    return order[overlap], order[overlap + 1]


def check_overlaps(recording: Recording, *, source: str | Path, params: Mapping[str, Any]) -> tuple[int, list[str]]:
    """Overlapping counting windows are an error unless preprocess.allow_overlapping_windows; returns how many
    trials overlap the next one, and the warning recorded when they are allowed."""
    first, second = overlapping_windows(recording, params["latency_ms"], params["window_ms"])
    if not first.size:
        return 0, []
    text = (
        f"the counting windows ({params['window_ms']:g} ms from {params['latency_ms']:g} ms after onset) of "
        f"{first.size} trial(s) overlap the next trial's, so spikes in the overlap count for both: first "
        f"{recording.trial_label(first[0])} and {recording.trial_label(second[0])}"
    )
    if not params["allow_overlapping_windows"]:
        raise InputDataError(
            source,
            f"{text}. Shorten preprocess.window_ms, or set preprocess.allow_overlapping_windows: true to count them",
        )
    log.warning("%s: %s (allowed by preprocess.allow_overlapping_windows)", source, text)
    return int(first.size), [text]


def unit_areas(source: str | Path, file_areas: np.ndarray, configured: str | None) -> np.ndarray:
    """Each unit's brain area: the file's (units' or electrodes' location), or the configured one (the session's
    `area` in the config) where the file does not say. A file that names another area is an error."""
    known = sorted(set(file_areas.tolist()) - {"unknown"})
    if configured is None:
        if not known:
            log.warning("%s: neither the file (location) nor the config (sessions: area) gives the area", source)
        return file_areas
    if any(area != configured for area in known):
        raise InputDataError(
            source,
            f"the config gives the session's area as '{configured}', but the recording's units are in "
            f"{', '.join(known)}: correct one of them, or remove the area from the config",
        )
    return np.full(file_areas.shape, configured)


def preprocess_recording(
    recording: Recording,
    *,
    source: str | Path,
    params: Mapping[str, Any],
    seed: int,
    inputs: list[Path],
    area: str | None = None,
) -> xr.Dataset:
    """Count spikes per trial and build the session dataset; `area` is the configured area of the session."""
    params = preprocess_settings(params)
    n_overlapping, warnings = check_overlaps(recording, source=source, params=params)
    responses, shown = trial_responses(recording, params["latency_ms"], params["window_ms"])
    never_shown = recording.images.shape[0] - shown.size
    if never_shown:
        log.info("%s: %d template images were never shown and are left out", source, never_shown)
    latency, window = params["latency_ms"], params["window_ms"]
    return build_session_dataset(
        source=source,
        session=recording.session,
        monkey=recording.monkey,
        responses=responses,
        images=recording.images if shown.size == len(recording.images) else recording.images[shown],
        neuron_ids=recording.unit_ids,
        image_ids=recording.image_ids[shown],
        image_types=recording.image_types[shown],
        source_index=shown,
        response_kind="single_trial",
        latency_ms=latency,
        window_ms=window,
        reliability_splits=params["reliability_splits"],
        min_reliability=params["min_reliability"],
        seed=int(rng_for(seed, recording.session, "reliability").integers(2**31)),
        area=unit_areas(source, recording.areas_of_units(), area),
        on_silent_neuron=params["on_silent_neuron"],
        history=(
            f"compactcortex.preprocess: spikes of each trial counted in [onset + {latency:g} ms, onset + "
            f"{latency + window:g} ms) from {Path(source).name}"
        ),
        attrs={
            **provenance_attrs({"preprocess": params, "seed": seed, "area": area}, inputs),
            "images_never_shown": int(never_shown),
            "n_overlapping_windows": n_overlapping,
            **recording.read_attrs,
            "warnings_json": json.dumps([*recording.warnings, *warnings]),
        },
    )
