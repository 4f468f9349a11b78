"""File-level entry points of the compression rules: read inputs, call the logic, write outputs atomically."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compactcortex.atomic import atomic_directory, atomic_path, write_text_atomic
from compactcortex.compact.compress import CompressSettings, compress_neurons
from compactcortex.compact.distill import predict
from compactcortex.compact.teacher import read_teacher_labels
from compactcortex.config import config_sha256
from compactcortex.ensemble.jobs import PredictionIndex, write_predictions
from compactcortex.errors import InputDataError
from compactcortex.evaluate import held_out_responses
from compactcortex.features import read_images
from compactcortex.io.compact_models import load_compact_model, save_compact_model
from compactcortex.provenance import code_version, provenance_attrs

log = logging.getLogger(__name__)


TIMINGS = "timings.tsv"  # per neuron: seconds of distillation, pruning and retraining (beside the cards)


def chunk_name(index: int) -> str:
    return f"chunk{index:03d}"


def plan_chunks(neuron_ids: Sequence[str], neurons_per_job: int) -> dict[str, list[str]]:
    """The neurons of a session in consecutive chunks of ``neurons_per_job`` (one Snakemake job each)."""
    if neurons_per_job < 1:
        raise ValueError(f"neurons_per_job must be at least 1, got {neurons_per_job}")
    ids = [str(n) for n in neuron_ids]
    return {
        chunk_name(i): ids[start : start + neurons_per_job]
        for i, start in enumerate(range(0, len(ids), neurons_per_job))
    }


def plan_compression_job(*, teacher: str, output: str, neurons_per_job: int) -> None:
    """The checkpoint: which neurons each compression job of the session trains (from the teacher's neurons)."""
    _, neuron_ids, _ = read_teacher_labels(teacher)
    chunks = plan_chunks(neuron_ids, neurons_per_job)
    write_text_atomic(output, json.dumps({"neurons_per_job": neurons_per_job, "chunks": chunks}, indent=2) + "\n")
    log.info("%d neurons in %d compression jobs", len(neuron_ids), len(chunks))


def read_plan(path: str | Path) -> dict[str, list[str]]:
    try:
        chunks = json.loads(Path(path).read_text())["chunks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputDataError(Path(path), f"cannot be read as a compression plan: {exc}") from exc
    if not isinstance(chunks, dict) or not all(isinstance(n, list) for n in chunks.values()):
        raise InputDataError(Path(path), "a compression plan's 'chunks' must map chunk names to lists of neurons")
    return chunks


def compress_chunk_job(
    *,
    pool: str,
    teacher: str,
    dataset: str,
    plan: str,
    chunk: str,
    output_dir: str,
    compact: Mapping[str, Any],
    session: str,
    seed: int,
) -> None:
    """Compress the chunk's neurons and write a state dict and a model card per neuron into ``output_dir``."""
    neurons = read_plan(plan).get(chunk)
    if not neurons:
        raise InputDataError(Path(plan), f"names no neurons for {chunk}")
    labels, teacher_neurons, split = read_teacher_labels(teacher)
    index = {neuron: i for i, neuron in enumerate(teacher_neurons)}
    missing = [n for n in neurons if n not in index]
    if missing:
        raise InputDataError(Path(teacher), f"has no labels for {missing} (stale plan?)")
    pool_images, _ = read_images(pool)
    if len(pool_images) != labels.shape[1]:
        raise InputDataError(
            Path(teacher), f"labels {labels.shape[1]} images but the pool {pool} has {len(pool_images)}"
        )
    settings = CompressSettings.from_config(compact, seed, session, compact["device"])
    log.info(
        "%s %s: %d neurons, %s students", session, chunk, len(neurons), "batched" if settings.batched else "one-by-one"
    )
    results = compress_neurons(
        pool_images, labels[[index[n] for n in neurons]], split, neurons, settings, seed=seed, session=session
    )
    session_images, _ = read_images(dataset)
    held = held_out_responses(dataset, np.asarray(neurons))
    predictions = np.stack([predict(model, session_images)[:, 0] for model, _ in results])
    accuracy = held.accuracy(predictions)
    provenance = provenance_attrs(
        {"compact": dict(compact), "seed": seed, "session": session}, [pool, teacher, dataset]
    )
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
                "seed": seed,
                "config_sha256": config_sha256({"compact": dict(compact), "seed": seed}),
                "code_version": code_version(),
                "source_sha256": json.loads(provenance["source_sha256"]),
                # wall-clock times vary from run to run: kept out of the card (whose checksum later outputs record)
                **{key: value for key, value in report.items() if key not in ("neuron", "seconds")},
            }
            save_compact_model(model, card, temporary, report["neuron"])
        timings = pd.DataFrame([{"neuron": report["neuron"], **report["seconds"]} for _, report in results])
        timings.to_csv(temporary / TIMINGS, sep="\t", index=False, float_format="%.3f")


def card_paths(chunk_dirs: Sequence[str]) -> list[Path]:
    return sorted((path for folder in chunk_dirs for path in Path(folder).glob("*.json")), key=lambda p: p.stem)


def collect_compact_session_job(
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
    with atomic_path(table_output) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
    log.info(
        "%s: %d compact models, median %d parameters, median fidelity r2 %.3f",
        session,
        len(table),
        table["n_parameters"].median(),
        table["fidelity_r2"].median(),
    )
