"""Jobs of ``rules/closed_loop.smk``: the stimulus set shown to the same neurons in a new session (simulated by the
virtual lab, or the lab's own recording), preprocessed like every session, and scored."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from compactcortex.compact.published import load_published_model
from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import published_models
from compactcortex.io.ground_truth import read_ground_truth, true_rates_table
from compactcortex.io.image_sets import read_image_coords, read_images
from compactcortex.io.predictions import halves
from compactcortex.io.session_dataset import repeat_means
from compactcortex.io.stimulus_sets import CONTROL, read_stimuli
from compactcortex.io.tables import write_table
from compactcortex.jobs.preprocess import preprocess_session
from compactcortex.lab.session import load_true_neurons, record_session
from compactcortex.metrics import SIGNIFICANCE
from compactcortex.models.compact import predict
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.synthesis.closed_loop import closed_loop_tables

log = logging.getLogger(__name__)


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
    image_types = read_image_coords(stimuli_path, ["image_type"])["image_type"].astype(str)
    neurons = load_true_neurons(neurons_path)
    original = read_ground_truth(original_truth_path, ("spontaneous_rate", "latency_ms"))
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


def preprocess_closed_loop(
    nwb_path: str | Path,
    output_path: str | Path,
    *,
    params: Mapping[str, Any],
    seed: int,
    session: str | None = None,
    area: str | None = None,
) -> None:
    """The closed-loop recording, preprocessed exactly as every session is (``preprocess_session``)."""
    preprocess_session(nwb_path, output_path, params=params, seed=seed, session=session, area=area)


def score_closed_loop(
    *,
    stimuli: str,
    dataset: str,
    truth: str | None,
    scores_output: str,
    adversarial_output: str,
    closed_loop: Mapping[str, int],
    seed: int,
    session: str,
) -> None:
    """Score the closed-loop session ``dataset`` (the stimulus set ``stimuli`` shown to the same neurons)."""
    _, table = read_stimuli(stimuli)
    recorded = repeat_means(dataset)
    missing = sorted(set(table["image"]) - set(recorded.index))
    if missing:
        raise InputDataError(
            Path(dataset), f"lacks {len(missing)} of the stimulus set's images (first: {', '.join(missing[:5])})"
        )
    true_rates = true_rates_table(truth) if truth else None
    rng = rng_for(seed, "closed_loop", session)
    scores, adversarial = closed_loop_tables(table, recorded, true_rates, rng, closed_loop["permutations"])
    if scores.empty:
        raise InputDataError(Path(dataset), f"records none of the neurons the stimuli of {stimuli} were made for")
    write_table(scores_output, scores)
    write_table(adversarial_output, adversarial)
    log.info(
        "%s: maximizing images beat natural ones (p < %.2f) for %d of %d neurons; median drive ratio %.2f",
        session,
        SIGNIFICANCE,
        int((scores["p_maximizing_beats_natural"] < SIGNIFICANCE).sum()),
        len(scores),
        scores["drive_ratio"].median(),
    )


def check_synthesis_on_published(
    *,
    stimuli: str,
    dataset: str,
    root: str,
    scores_output: str,
    adversarial_output: str,
    closed_loop: Mapping[str, int],
    seed: int,
    session: str,
) -> None:
    """This pipeline's synthesised images of each neuron shown to an independent model of the same neuron: the
    published compact model (Cowley et al. 2023), scored as the closed loop scores a recording (the same
    permutation test against the same controls). The published model predicts the neuron's z-scored response; it is
    put back into spike counts with the first half's mean and sd of the neuron's responses, so that drive ratios
    compare counts."""
    images, table = read_stimuli(stimuli)
    numbers = {f"{name}_n{number:03d}": number for name, number in published_models(root) if name == session}
    neurons = [neuron for neuron in dict.fromkeys(table["neuron"]) if neuron in numbers]
    if not neurons:
        raise InputDataError(Path(stimuli), f"has no images for a neuron with a published compact model ({session})")
    responses = repeat_means(dataset)
    fit, _ = halves(len(responses))
    counts = {}
    controls = (table["stimulus"] == CONTROL).to_numpy()
    for neuron in neurons:
        model = load_published_model(root, session, numbers[neuron], dtype=torch.float32)
        reference = responses[neuron].to_numpy()[fit]
        reference = reference[np.isfinite(reference)]
        # a neuron is scored on its own images, their sources and the controls: only those go through its model
        own = (table["neuron"] == neuron).to_numpy()
        shown = own | controls | table["image"].isin(table.loc[own, "source"]).to_numpy()
        counts[neuron] = np.full(len(table), np.nan)
        counts[neuron][shown] = predict(model, images[shown])[:, 0] * reference.std(ddof=1) + reference.mean()
    predicted = pd.DataFrame(counts, index=table["image"].to_numpy())
    rng = rng_for(seed, "closed_loop", "published_check", session)
    scores, adversarial = closed_loop_tables(table, predicted, None, rng, closed_loop["permutations"])
    scores["drive_from"] = "published compact model"
    write_table(scores_output, scores)
    write_table(adversarial_output, adversarial)
    log.info(
        "%s: on the published models, maximizing images beat the controls (p < %.2f) for %d of %d neurons; median "
        "drive ratio %.2f; %.0f%% of adversarial images move them the intended way",
        session,
        SIGNIFICANCE,
        int((scores["p_maximizing_beats_natural"] < SIGNIFICANCE).sum()),
        len(scores),
        scores["drive_ratio"].median(),
        100 * adversarial["recorded_correct"].mean(),
    )
