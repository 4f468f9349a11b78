"""A recording session of the virtual V4 lab: images shown to virtual neurons in trials, their spikes, the NWB file
and, beside it, the ground truth."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compactcortex.io.ground_truth import write_ground_truth
from compactcortex.io.nwb import write_recording_nwb
from compactcortex.lab.neurons import VirtualNeurons
from compactcortex.lab.spiking import schedule_trials, spike_trains
from compactcortex.recording import Recording
from compactcortex.seeding import rng_for
from compactcortex.stimuli import make_image_set

log = logging.getLogger(__name__)

CALIBRATION_MIX = {"natural": 0.4, "dead_leaves": 0.1, "texture": 0.1, "gaudy": 0.1, "dots": 0.15, "shapes": 0.15}


def calibration_images(lab: Mapping[str, Any], seed: int) -> np.ndarray:
    """The lab-wide image set on which every neuron's rate range is calibrated."""
    total = lab["calibration_images"]
    counts = {kind: int(round(share * total)) for kind, share in CALIBRATION_MIX.items()}
    images, _ = make_image_set(rng_for(seed, "lab", "calibration"), counts, lab["image_size"])
    return images


def record_session(
    *,
    session: str,
    neurons: VirtualNeurons,
    rates: np.ndarray,
    spontaneous: np.ndarray,
    latency_s: np.ndarray | None,
    neuron_ids: np.ndarray,
    images: np.ndarray,
    image_ids: np.ndarray,
    image_types: np.ndarray,
    repeats: int,
    lab: Mapping[str, Any],
    spiking_rng: np.random.Generator,
    nwb_path: str | Path,
    truth_path: str | Path,
    template_name: str,
    image_column: str,
    provenance: Mapping[str, str],
    description: str,
) -> None:
    """Show ``images`` (with true rates ``rates``, neuron x image) to the neurons: trials, spikes, the NWB file and
    the ground truth beside it. Response latencies are drawn (after the trial schedule) unless given."""
    timing, spiking = lab["timing"], lab["spiking"]
    schedule = schedule_trials(
        spiking_rng,
        len(images),
        repeats,
        stimulus_ms=timing["stimulus_ms"],
        interval_ms=timing["interval_ms"],
        aborted_fraction=spiking["aborted_trial_fraction"],
    )
    if latency_s is None:
        jitter = spiking_rng.normal(0.0, timing["latency_jitter_ms"], len(neurons))
        latency_s = np.maximum((timing["latency_ms"] + jitter) / 1000.0, 0.0)
    spike_times, unit_bounds = spike_trains(
        spiking_rng,
        rates,
        spontaneous,
        latency_s,
        schedule,
        gain_cv=spiking["gain_cv"],
        shared_gain_cv=spiking["shared_gain_cv"],
        resolution_s=spiking["spike_time_resolution_s"],
    )
    recording = Recording(
        session=session,
        monkey=lab["monkey"],
        unit_ids=neuron_ids,
        spike_times=spike_times,
        unit_bounds=unit_bounds,
        trial_onset=schedule.onset,
        trial_offset=schedule.offset,
        trial_image=schedule.image,
        images=images,
        image_ids=image_ids,
        image_types=image_types,
        area="V4",
        description=description,
    )
    write_recording_nwb(
        nwb_path,
        recording,
        template_name=template_name,
        image_column=image_column,
        spike_time_resolution_s=spiking["spike_time_resolution_s"],
    )
    write_ground_truth(
        truth_path,
        kinds=np.asarray(neurons.kind),
        rates=rates,
        spontaneous=spontaneous,
        latency_s=latency_s,
        neuron_ids=neuron_ids,
        image_ids=image_ids,
        image_types=image_types,
        attrs={"session": session, "monkey": lab["monkey"], **provenance},
    )
    log.info(
        "%s: %d neurons, %d images, %d trials, %d spikes; median peak rate %.1f spikes/s",
        session,
        len(neurons),
        len(images),
        schedule.onset.size,
        spike_times.size,
        np.median(rates.max(axis=1)),
    )


def load_true_neurons(neurons_path: str | Path) -> VirtualNeurons:
    """The true neurons of a simulated session, ready to be shown new images (closed-loop experiments)."""
    return VirtualNeurons.load(neurons_path)
