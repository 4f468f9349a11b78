"""Jobs of ``rules/compact.smk``: a test session's distillation pool and its teacher labels, the compression plan,
the compact models (one job per chunk of neurons), their collection, the published models' predictions, and the
comparison of every model across the test sessions."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from compactcortex.atomic import atomic_directory
from compactcortex.backbones import load_backbone
from compactcortex.compact.compress import CompressSettings
from compactcortex.compact.compress import compress_neurons as compress
from compactcortex.compact.published import load_published_model
from compactcortex.compact.stream import CachedImages, PoolData
from compactcortex.config import config_sha256
from compactcortex.errors import InputDataError
from compactcortex.evaluate import comparison_table, held_out_responses
from compactcortex.io.compact_models import TIMINGS, card_paths, load_compact_model, save_compact_model
from compactcortex.io.compression_plan import plan_chunks, read_plan, write_plan
from compactcortex.io.cowley2023 import model_paths, published_models
from compactcortex.io.image_sets import read_images
from compactcortex.io.members import readout_neurons
from compactcortex.io.predictions import PredictionIndex, write_predictions
from compactcortex.io.tables import write_table
from compactcortex.io.teacher_labels import CHUNK_IMAGES, TeacherLabels, TeacherLabelWriter, teacher_neurons
from compactcortex.models.compact import predict
from compactcortex.models.ensemble import EMBED_BATCH
from compactcortex.models.teacher import Teacher
from compactcortex.pool import pool_recipe
from compactcortex.progress import Progress
from compactcortex.provenance import code_version, provenance_attrs

log = logging.getLogger(__name__)


def teacher_labels(
    *,
    member_paths: Sequence[str],
    readouts: str,
    dataset: str,
    other_datasets: Sequence[str] = (),
    output: str,
    pool: Mapping[str, Any],
    features: Mapping[str, Any],
    session: str,
    seed: int,
    device: str,
) -> None:
    """The teacher's labels of the pool (docs/method.md section 4): the ensemble mean through each neuron's fitted
    mapping, for all of the session's neurons, in the mapping's units (responses z-scored on the first half). The
    pool is streamed: each batch of images is regenerated from the recipe, its backbone features computed on the fly
    and labelled, so neither the pool's images nor its features are stored and memory does not grow with the
    pool. Every student of the session trains on these labels."""
    recipe = pool_recipe(dataset, other_datasets, pool, session, seed)
    n = len(recipe)
    teacher = Teacher(member_paths, [readouts], device)
    backbone = load_backbone(features["backbone"], features.get("weights_path"))
    layer = features["layer"]
    # whole backbone and embedding batches: the streamed labels are those of the whole pool labelled at once
    batch = math.lcm(features["batch_size"], EMBED_BATCH)
    inputs = [*member_paths, readouts, dataset, *other_datasets]
    attrs = provenance_attrs(
        {
            "pool": dict(pool),
            "features": dict(features),
            "members": len(member_paths),
            "session": session,
            "seed": seed,
        },
        inputs,
    )
    neurons = readout_neurons(readouts)
    with TeacherLabelWriter(
        output, neurons, n, recipe.heldout_start, attrs | {"pool_sources": recipe.describe()}
    ) as writer:
        progress = Progress("teacher labels", n, "image", logger=log)
        for start in range(0, n, batch):
            images = recipe.images(np.arange(start, min(n, start + batch)))
            extracted = backbone.extract(
                images, [layer], input_size=features["input_size"], batch_size=features["batch_size"], device=device
            )[layer]
            features_16 = torch.from_numpy(extracted).to(torch.float16)  # float16, as the feature cache holds them
            labels = teacher(features_16).mean(axis=0)
            if not np.all(np.isfinite(labels)):
                raise InputDataError(
                    Path(readouts), f"the teacher's labels of pool images {start}.. are not all finite"
                )
            writer.write(start, labels)
            progress.update(min(n, start + batch))
    log.info("teacher labels: %d neurons x %d pool images", len(neurons), n)


def plan_compression(*, teacher: str, output: str, neurons_per_job: int) -> None:
    """The checkpoint: which neurons each compression job of the session trains (from the teacher's neurons)."""
    neuron_ids = teacher_neurons(teacher)
    chunks = plan_chunks(neuron_ids, neurons_per_job)
    write_plan(output, chunks, neurons_per_job)
    log.info("%d neurons in %d compression jobs", len(neuron_ids), len(chunks))


def compress_neurons(
    *,
    teacher: str,
    dataset: str,
    other_datasets: Sequence[str] = (),
    plan: str,
    chunk: str,
    output_dir: str,
    compact: Mapping[str, Any],
    session: str,
    seed: int,
    cache_mb: int = 0,
    workers: int = 0,
) -> None:
    """Compress the chunk's neurons (distil, prune, rebuild, retrain) and write a state dict and a model card per
    neuron into ``output_dir``. The pool is read by index: images regenerated from its recipe (the first
    ``cache_mb`` of them kept in memory; ``workers`` processes regenerating ahead), the chunk's labels read block by
    block from the teacher's file."""
    neurons = read_plan(plan).get(chunk)
    if not neurons:
        raise InputDataError(Path(plan), f"names no neurons for {chunk}")
    recipe = pool_recipe(dataset, other_datasets, compact["pool"], session, seed)
    with TeacherLabels(teacher, neurons) as labels:
        if (labels.n_images, labels.heldout_start) != (len(recipe), recipe.heldout_start):
            raise InputDataError(
                Path(teacher),
                f"labels a pool of {labels.n_images} images held out from {labels.heldout_start}, but the config's "
                f"pool has {len(recipe)} held out from {recipe.heldout_start}: rerun rule teacher_labels",
            )
        data = PoolData(
            CachedImages(recipe, cache_mb * 2**20), labels, len(recipe), recipe.heldout, CHUNK_IMAGES, workers
        )
        settings = CompressSettings.from_config(compact, seed, session, compact["device"])
        log.info(
            "%s %s: %d neurons, %s students", session, chunk, len(neurons), "batched" if settings.batched else "in step"
        )
        results = compress(data, settings, seed=seed, session=session)
    inputs = [teacher, dataset, *other_datasets]
    neurons = [report["neuron"] for _, report in results]
    session_images, _ = read_images(dataset)
    held = held_out_responses(dataset, np.asarray(neurons))
    predictions = np.stack([predict(model, session_images)[:, 0] for model, _ in results])
    accuracy = held.accuracy(predictions)
    scale = held.response_scale()
    provenance = provenance_attrs({"compact": dict(compact), "seed": seed, "session": session}, inputs)
    with atomic_directory(output_dir) as temporary:
        for i, (model, report) in enumerate(results):
            card = {
                "session": session,
                "neuron": report["neuron"],
                "fidelity_r2": report["fidelity_r2"],
                "r2_er": float(accuracy["r2_er"][i]),
                "r": float(accuracy["r"][i]),
                "accuracy_on": "held-out half of the session's images (second half, index order)",
                "output_units": "the teacher's: the ensemble's prediction, responses z-scored on the first half",
                # output * response_sd + response_mean: spike counts per counting window (public API's predict)
                "response_mean": float(scale.mean[i]),
                "response_sd": float(scale.sd[i]),
                "response_units": scale.units,
                "seed": seed,
                "config_sha256": config_sha256({"compact": dict(compact), "seed": seed}),
                "code_version": code_version(),
                "source_sha256": json.loads(provenance["source_sha256"]),
                # wall-clock times vary from run to run: kept out of the card (whose checksum later outputs record)
                **{key: value for key, value in report.items() if key not in ("neuron", "seconds")},
            }
            save_compact_model(model, card, temporary, report["neuron"])
        timings = pd.DataFrame([{"neuron": report["neuron"], **report["seconds"]} for _, report in results])
        write_table(temporary / TIMINGS, timings, float_format="%.3f", sep="\t")


def collect_compact_models(
    *, chunk_dirs: Sequence[str], dataset: str, predictions_output: str, table_output: str, session: str
) -> None:
    """Every compact model of a session: their predictions for all the session's images and one table row each."""
    images, image_ids = read_images(dataset)
    rows, predictions = [], []
    cards = card_paths(chunk_dirs)
    for path in cards:
        model, card = load_compact_model(path)
        predictions.append(predict(model, images)[:, 0])
        rows.append(
            {
                "neuron": card["neuron"],
                "n_parameters": card["n_parameters"],
                **{f"filters_layer{k}": f for k, f in enumerate(card["filters"])},
                "fidelity_r2": card["fidelity_r2"],
                "fidelity_r2_unpruned": card["fidelity_r2_unpruned"],
                "r2_er": card["r2_er"],
                "r": card["r"],
                "card": os.path.relpath(path, Path(table_output).parent),  # relative to this table's folder
            }
        )
    if not rows:
        raise InputDataError(Path(chunk_dirs[0]) if chunk_dirs else Path(dataset), "no compact models were found")
    table = pd.DataFrame(rows)
    index = PredictionIndex(session, table["neuron"].to_numpy(), image_ids)
    write_predictions(predictions_output, np.stack(predictions), index, {"session": session}, [dataset, *cards])
    write_table(table_output, table)
    log.info(
        "%s: %d compact models, median %d parameters, median fidelity r2 %.3f",
        session,
        len(table),
        table["n_parameters"].median(),
        table["fidelity_r2"].median(),
    )


def published_compact_predictions(*, root: str, session: str, dataset: str, output: str) -> None:
    """The published compact models' predictions for a session's images (neuron i is the session's ``_n<i:03d>``),
    written like every other model's predictions, so the same evaluation code scores them."""
    numbers = [neuron for name, neuron in published_models(root) if name == session]
    if not numbers:
        raise InputDataError(Path(root), f"holds no published compact models of session {session}")
    images, image_ids = read_images(dataset)
    # float32: the published float64 weights predict the fixture to ~1e-6 in float32, ten times faster on a CPU
    predictions, x = [], None
    progress = Progress(f"{session} published models", len(numbers), "model", logger=log)
    for number in progress.iterate(numbers):
        model = load_published_model(root, session, number, dtype=torch.float32)
        x = model.preprocess(images) if x is None else x  # the published models share the input: preprocessed once
        predictions.append(predict(model, x)[:, 0])
    neuron_ids = np.asarray([f"{session}_n{n:03d}" for n in numbers])
    paths = [model_paths(root, session, n)[0] for n in numbers]
    write_predictions(
        output,
        np.stack(predictions),
        PredictionIndex(session, neuron_ids, image_ids),
        {"root": root},
        [dataset, *paths],
    )


def compact_comparison(*, evaluations: Sequence[str], output: str) -> None:
    """One row per test session: each model's median accuracy on the held-out half."""
    write_table(output, comparison_table(evaluations), float_format="%.4f")
