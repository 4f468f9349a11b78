"""Jobs of ``rules/synthesis.smk``: each chunk's synthesised images, then a session's stimulus set."""

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
from compactcortex.io.predictions import PredictionIndex
from compactcortex.io.stimulus_sets import CONTROL, read_stimuli, write_stimuli, write_stimulus_set
from compactcortex.models.compact import predict
from compactcortex.pool import pool_image_id, pool_recipe
from compactcortex.provenance import provenance_attrs
from compactcortex.synthesis.stimulus_set import StimulusDesign, control_indices, neuron_stimuli

log = logging.getLogger(__name__)


def synthesize_images(
    *,
    chunk_dir: str,
    dataset: str,
    other_datasets: Sequence[str] = (),
    output: str,
    pool: Mapping[str, Any],
    synthesis: Mapping[str, Any],
    session: str,
    seed: int,
) -> None:
    """Synthesise the images of one compression job's neurons (a chunk) into one image set. The pool's images (the
    controls, the natural images searched) are regenerated from its recipe."""
    design = StimulusDesign.from_config(synthesis)
    cards = card_paths([chunk_dir])
    if not cards:
        raise InputDataError(Path(chunk_dir), "holds no compact model cards")
    loaded = [load_compact_model(path, design.device) for path in cards]
    models = [model for model, _ in loaded]
    neurons = [card["neuron"] for _, card in loaded]
    recipe = pool_recipe(dataset, other_datasets, pool, session, seed)
    started = time.perf_counter()
    rows = neuron_stimuli(models, neurons, recipe, design, seed)
    seconds = time.perf_counter() - started
    write_stimuli(
        output,
        np.stack([row["pixels"] for row in rows]),
        [row["image"] for row in rows],
        np.array([row["stimulus"] for row in rows]),
        {key: np.array([row[key] for row in rows]) for key in ("neuron", "source", "predicted")},
        provenance_attrs(
            {"synthesis": dict(synthesis), "pool": dict(pool), "seed": seed, "session": session},
            [dataset, *other_datasets, *cards],
        ),
    )
    log.info("%s: %d images for %d neurons in %.1f s", Path(chunk_dir).name, len(rows), len(neurons), seconds)


def collect_stimuli(
    *,
    chunk_files: Sequence[str],
    chunk_dirs: Sequence[str],
    dataset: str,
    other_datasets: Sequence[str] = (),
    output_dir: str,
    pool: Mapping[str, Any],
    synthesis: Mapping[str, Any],
    session: str,
    seed: int,
) -> None:
    """A session's stimulus set: the controls and every chunk's images, as ``stimuli.nc``, PNGs and a manifest,
    with every compact model's predictions for every image (``predictions.nc``)."""
    design = StimulusDesign.from_config(synthesis)
    recipe = pool_recipe(dataset, other_datasets, pool, session, seed)
    controls = control_indices(recipe, design.controls)
    parts = [read_stimuli(path) for path in chunk_files]
    control_ids = [pool_image_id(session, int(index)) for index in controls]
    control_table = pd.DataFrame(
        {"image": control_ids, "stimulus": CONTROL, "neuron": "", "source": "", "predicted": np.nan}
    )
    table = pd.concat([control_table, *(t for _, t in parts)], ignore_index=True)
    pixels = np.concatenate([recipe.images(controls), *(p for p, _ in parts)])
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
    attrs = provenance_attrs(
        {"synthesis": dict(synthesis), "pool": dict(pool), "seed": seed, "session": session},
        [dataset, *other_datasets, *chunk_files],
    )
    index = PredictionIndex(session, model_neurons, table["image"].to_numpy())
    write_stimulus_set(output_dir, pixels, table, attrs, predictions, index, list(map(str, cards)))
    counts = table["stimulus"].value_counts().to_dict()
    log.info("%s: %d stimuli for %d neurons: %s", session, len(table), len(model_neurons), counts)
