"""Simulate one recording session of the virtual V4 lab: the NWB file and, beside it, the ground truth."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError
from compactcortex.features import read_images
from compactcortex.io.nwb import write_recording_nwb
from compactcortex.lab.neurons import VirtualNeurons
from compactcortex.lab.sampling import sample_population
from compactcortex.lab.spiking import schedule_trials, spike_trains
from compactcortex.provenance import provenance_attrs
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


def simulate_session(
    *,
    session: str,
    design: Mapping[str, Any],
    lab: Mapping[str, Any],
    seed: int,
    nwb_path: str | Path,
    truth_path: str | Path,
    neurons_path: str | Path,
    template_name: str = "stimulus_images",
    image_column: str = "image_index",
) -> None:
    """Simulate `session` with the role design `design` (n_neurons, repeats, images per type).

    Writes the recording (NWB), the true noiseless rates (NetCDF) and the neurons' parameters (npz),
    from which the same neurons can be shown new images later.
    """
    images, image_types = make_image_set(rng_for(seed, session, "images"), dict(design["images"]), lab["image_size"])
    neurons = sample_population(
        rng_for(seed, session, "neurons"),
        design["n_neurons"],
        lab["image_size"],
        kind_fractions=dict(lab["kind_fractions"]),
        calibration_images=calibration_images(lab, seed),
    )
    rates = neurons.rates(images)
    spiking_rng = rng_for(seed, session, "spiking")
    spontaneous = np.percentile(rates, 5, axis=1)
    record_session(
        session=session,
        neurons=neurons,
        rates=rates,
        spontaneous=spontaneous,
        latency_s=None,
        neuron_ids=np.array([f"{session}_n{index:03d}" for index in range(len(neurons))]),
        images=images,
        image_ids=np.array([f"{session}_img{index:05d}" for index in range(len(images))]),
        image_types=image_types,
        repeats=design["repeats"],
        lab=lab,
        spiking_rng=spiking_rng,
        nwb_path=nwb_path,
        truth_path=truth_path,
        template_name=template_name,
        image_column=image_column,
        provenance=provenance_attrs({"session": session, "design": dict(design), "lab": dict(lab), "seed": seed}),
        description=f"Virtual V4 lab session {session}: passive fixation, images flashed in shuffled order.",
    )
    with atomic_path(neurons_path) as temporary:
        neurons.save(temporary)


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
    truth = ground_truth_dataset(neurons, rates, spontaneous, latency_s, neuron_ids, image_ids, image_types)
    truth.attrs.update({"session": session, "monkey": lab["monkey"], **provenance})
    with atomic_path(truth_path) as temporary:
        truth.to_netcdf(temporary, engine="netcdf4")
    log.info(
        "%s: %d neurons, %d images, %d trials, %d spikes; median peak rate %.1f spikes/s",
        session,
        len(neurons),
        len(images),
        schedule.onset.size,
        spike_times.size,
        np.median(rates.max(axis=1)),
    )


def ground_truth_dataset(
    neurons: VirtualNeurons,
    rates: np.ndarray,
    spontaneous: np.ndarray,
    latency_s: np.ndarray,
    neuron_ids: np.ndarray,
    image_ids: np.ndarray,
    image_types: np.ndarray,
) -> xr.Dataset:
    """What the simulator knows and the recordings do not: noiseless rates and each neuron's kind."""
    return xr.Dataset(
        {
            "rate": (("neuron", "image"), rates, {"long_name": "noiseless driven firing rate", "units": "spikes/s"}),
            "spontaneous_rate": ("neuron", spontaneous, {"units": "spikes/s"}),
            "latency_ms": ("neuron", latency_s * 1000.0, {"units": "ms"}),
            "neuron_kind": ("neuron", np.asarray(neurons.kind).astype(str)),
        },
        coords={"neuron": neuron_ids, "image": image_ids, "image_type": ("image", image_types.astype(str))},
    )


def load_true_neurons(neurons_path: str | Path) -> VirtualNeurons:
    """The true neurons of a simulated session, ready to be shown new images (closed-loop experiments)."""
    return VirtualNeurons.load(neurons_path)


def simulate_closed_loop(
    *,
    session: str,
    stimuli_path: str | Path,
    neurons_path: str | Path,
    original_truth_path: str | Path,
    lab: Mapping[str, Any],
    repeats: int,
    seed: int,
    nwb_path: str | Path,
    truth_path: str | Path,
    template_name: str = "stimulus_images",
    image_column: str = "image_index",
) -> None:
    """The closed loop's recording: a new session (``session``) in which the same true neurons as in the session
    the models were made from see the stimulus set (synthesised, adversarial and control images), with their
    spontaneous rates and latencies, fresh spiking noise and ``repeats`` repeats."""
    images, image_ids = read_images(stimuli_path)
    with xr.open_dataset(stimuli_path) as stimuli:
        image_types = stimuli["image_type"].values.astype(str)
    neurons = load_true_neurons(neurons_path)
    with xr.open_dataset(original_truth_path) as original:
        neuron_ids = original["neuron"].values.astype(str)
        spontaneous = original["spontaneous_rate"].values
        latency_s = original["latency_ms"].values / 1000.0
    if len(neuron_ids) != len(neurons):
        raise InputDataError(
            Path(neurons_path),
            f"holds {len(neurons)} neurons, the ground truth {original_truth_path} {len(neuron_ids)}",
        )
    record_session(
        session=session,
        neurons=neurons,
        rates=neurons.rates(images),
        spontaneous=spontaneous,
        latency_s=latency_s,
        neuron_ids=neuron_ids,
        images=images,
        image_ids=image_ids,
        image_types=image_types,
        repeats=repeats,
        lab=lab,
        spiking_rng=rng_for(seed, session, "spiking"),
        nwb_path=nwb_path,
        truth_path=truth_path,
        template_name=template_name,
        image_column=image_column,
        provenance=provenance_attrs(
            {"session": session, "lab": dict(lab), "repeats": repeats, "seed": seed},
            [stimuli_path, neurons_path, original_truth_path],
        ),
        description=f"Virtual V4 lab closed-loop session {session}: the synthesised stimuli shown to the same neurons.",
    )
