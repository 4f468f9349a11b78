"""Preprocessing: an NWB recording -> the session dataset (spike counts per trial, noise ceiling)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from compactcortex.errors import InputDataError
from compactcortex.nwb_io import read_recording_nwb
from compactcortex.provenance import provenance_attrs
from compactcortex.recording import Recording
from compactcortex.seeding import rng_for
from compactcortex.session_dataset import build_session_dataset, write_session_dataset
from compactcortex.spike_counts import count_spikes

log = logging.getLogger(__name__)


def trial_responses(recording: Recording, latency_ms: float, window_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts arranged as (neuron, image, repeat), NaN-padded, for the images shown at least once.

    Repeats of an image are numbered in presentation order. Returns the responses and the indices
    (into recording.images) of the images they cover.
    """
    window_start = recording.trial_onset + latency_ms / 1000.0
    counts = count_spikes(recording.spike_times, recording.unit_bounds, window_start, window_start + window_ms / 1000.0)
    shown, image_of_trial = np.unique(recording.trial_image, return_inverse=True)
    order = np.lexsort((recording.trial_onset, image_of_trial))
    sorted_image = image_of_trial[order]
    first_of_image = np.searchsorted(sorted_image, np.arange(shown.size))
    repeat_of_sorted = np.arange(order.size) - first_of_image[sorted_image]
    responses = np.full((recording.n_units, shown.size, repeat_of_sorted.max() + 1), np.nan, dtype=np.float64)
    responses[:, sorted_image, repeat_of_sorted] = counts[:, order]
    return responses, shown


def preprocess_recording(
    recording: Recording, *, source: str | Path, params: Mapping[str, Any], seed: int, inputs: list[Path]
) -> xr.Dataset:
    responses, shown = trial_responses(recording, params["latency_ms"], params["window_ms"])
    never_shown = recording.images.shape[0] - shown.size
    if never_shown:
        log.info("%s: %d template images were never shown and are left out", source, never_shown)
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
        latency_ms=params["latency_ms"],
        window_ms=params["window_ms"],
        reliability_splits=params["reliability_splits"],
        min_reliability=params["min_reliability"],
        seed=int(rng_for(seed, recording.session, "reliability").integers(2**31)),
        area=recording.area,
        attrs={
            **provenance_attrs({"preprocess": dict(params), "seed": seed}, inputs),
            "images_never_shown": int(never_shown),
        },
    )


def preprocess_nwb(
    nwb_path: str | Path,
    output_path: str | Path,
    *,
    params: Mapping[str, Any],
    seed: int,
    session: str | None = None,
) -> None:
    """Read an NWB session, count spikes per trial and write the session dataset, named ``session`` (by default
    the output file's name)."""
    nwb_path = Path(nwb_path)
    recording = read_recording_nwb(
        nwb_path, template_name=params["nwb_stimulus_template"], image_column=params["nwb_image_column"]
    )
    session = session or Path(output_path).stem
    if recording.session != session:
        log.warning(
            "%s: NWB session_id '%s' differs from the session's name '%s'", nwb_path, recording.session, session
        )
        recording.session = session
    if recording.n_trials == 0:
        raise InputDataError(nwb_path, "no trials")
    dataset = preprocess_recording(recording, source=nwb_path, params=params, seed=seed, inputs=[nwb_path])
    write_session_dataset(dataset, output_path, params["compression_level"])
    log.info(
        "%s: %d neurons, %d images, median %d repeats, %d spikes",
        output_path,
        dataset.sizes["neuron"],
        dataset.sizes["image"],
        int(np.median(dataset["n_repeats"])),
        recording.n_spikes,
    )
