"""Jobs of ``rules/synthesis.smk``: each chunk's synthesised images, a session's stimulus set, and the closed loop
(the stimulus set shown to the neurons in a new session, preprocessed, and scored)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compactcortex.errors import InputDataError
from compactcortex.io.compact_models import card_paths, load_compact_model
from compactcortex.io.ground_truth import read_ground_truth, true_rates_table
from compactcortex.io.image_sets import read_image_coords, read_images
from compactcortex.io.predictions import PredictionIndex
from compactcortex.io.session_dataset import repeat_means
from compactcortex.io.stimulus_sets import CONTROL, read_stimuli, write_stimuli, write_stimulus_set
from compactcortex.io.tables import write_table
from compactcortex.jobs.preprocess import preprocess_session
from compactcortex.lab.session import load_true_neurons, record_session
from compactcortex.metrics import SIGNIFICANCE
from compactcortex.models.compact import predict
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.synthesis.closed_loop import closed_loop_tables
from compactcortex.synthesis.stimulus_set import StimulusDesign, control_indices, neuron_stimuli

log = logging.getLogger(__name__)


def _pool_arrays(pool: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images, image_ids, image_type, split) of a distillation pool."""
    images, image_ids = read_images(pool)
    coords = read_image_coords(pool, ["image_type", "split"], kind="a distillation pool")
    return images, image_ids, coords["image_type"].astype(str), coords["split"].astype(str)


def synthesize_images(
    *, chunk_dir: str, pool: str, output: str, synthesis: Mapping[str, Any], session: str, seed: int
) -> None:
    """Synthesise the images of one compression job's neurons (a chunk) into one image set."""
    design = StimulusDesign.from_config(synthesis)
    cards = card_paths([chunk_dir])
    if not cards:
        raise InputDataError(Path(chunk_dir), "holds no compact model cards")
    loaded = [load_compact_model(path, design.device) for path in cards]
    models = [model for model, _ in loaded]
    neurons = [card["neuron"] for _, card in loaded]
    arrays = _pool_arrays(pool)
    controls = control_indices(arrays[2], arrays[3], design.controls, pool)
    started = time.perf_counter()
    rows = neuron_stimuli(models, neurons, arrays, controls, design, seed)
    seconds = time.perf_counter() - started
    write_stimuli(
        output,
        np.stack([row["pixels"] for row in rows]),
        [row["image"] for row in rows],
        np.array([row["stimulus"] for row in rows]),
        {key: np.array([row[key] for row in rows]) for key in ("neuron", "source", "predicted")},
        provenance_attrs({"synthesis": dict(synthesis), "seed": seed, "session": session}, [pool, *cards]),
    )
    log.info("%s: %d images for %d neurons in %.1f s", Path(chunk_dir).name, len(rows), len(neurons), seconds)


def collect_stimuli(
    *,
    chunk_files: Sequence[str],
    chunk_dirs: Sequence[str],
    pool: str,
    output_dir: str,
    synthesis: Mapping[str, Any],
    session: str,
) -> None:
    """A session's stimulus set: the controls and every chunk's images, as ``stimuli.nc``, PNGs and a manifest,
    with every compact model's predictions for every image (``predictions.nc``)."""
    design = StimulusDesign.from_config(synthesis)
    images, image_ids, image_types, split = _pool_arrays(pool)
    controls = control_indices(image_types, split, design.controls, pool)
    parts = [read_stimuli(path) for path in chunk_files]
    control_table = pd.DataFrame(
        {"image": image_ids[controls], "stimulus": CONTROL, "neuron": "", "source": "", "predicted": np.nan}
    )
    table = pd.concat([control_table, *(t for _, t in parts)], ignore_index=True)
    pixels = np.concatenate([images[controls], *(p for p, _ in parts)])
    cards = card_paths(chunk_dirs)
    loaded = [load_compact_model(path) for path in cards]
    model_neurons = np.array([card["neuron"] for _, card in loaded])
    predictions = np.stack([predict(model, pixels)[:, 0] for model, _ in loaded])
    by_neuron = {neuron: i for i, neuron in enumerate(model_neurons)}
    is_control = table["stimulus"] == CONTROL
    table["predicted"] = [
        np.nan if control else predictions[by_neuron[n], i]
        for i, (n, control) in enumerate(zip(table["neuron"], is_control, strict=True))
    ]
    attrs = provenance_attrs({"synthesis": dict(synthesis), "session": session}, [pool, *chunk_files])
    index = PredictionIndex(session, model_neurons, table["image"].to_numpy())
    write_stimulus_set(output_dir, pixels, table, attrs, predictions, index, list(map(str, cards)))
    counts = table["stimulus"].value_counts().to_dict()
    log.info("%s: %d stimuli for %d neurons: %s", session, len(table), len(model_neurons), counts)


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
