"""Jobs of ``rules/lab.smk``: the virtual V4 lab's recording sessions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compactcortex.atomic import atomic_path
from compactcortex.lab.sampling import sample_population
from compactcortex.lab.session import calibration_images, record_session
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.stimuli import make_image_set


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
