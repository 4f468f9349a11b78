"""File-level entry points of the synthesis rules: a chunk's synthesised images, then a session's stimulus set.

A session's stimulus set is what the next recording session shows (the closed loop): the control natural images
(the first ``controls`` natural images of the held-out pool, the same for every neuron) and, for every neuron,
its maximizing and minimizing images, its most-driving natural images and adversarial versions (up and down) of
the controls its model predicts to drive it most. ``manifest.csv`` says for each image which neuron it was made for
and what its model predicts; ``predictions.nc`` holds every model's prediction for every image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from PIL import Image
from tqdm import tqdm

from compactcortex.atomic import atomic_directory, atomic_path
from compactcortex.compact.distill import predict
from compactcortex.compact.jobs import card_paths
from compactcortex.ensemble.jobs import PredictionIndex, write_predictions
from compactcortex.errors import InputDataError
from compactcortex.features import read_images
from compactcortex.io.compact_models import load_compact_model
from compactcortex.io.image_sets import write_image_set
from compactcortex.models.compact import CompactModel
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.synthesis.images import (
    AdversarialSettings,
    SynthesisSettings,
    adversarial,
    as_bank,
    synthesize,
    white_noise,
)

log = logging.getLogger(__name__)

CONTROL = "control"
MAXIMIZING, MINIMIZING, NATURAL_TOP = "maximizing", "minimizing", "natural_top"
ADVERSARIAL_UP, ADVERSARIAL_DOWN = "adversarial_up", "adversarial_down"
NOISE_STD = 40.0  # pixels: the white-noise start about mid-grey


@dataclass(frozen=True)
class StimulusDesign:
    """What is made per neuron, from the config's ``synthesis`` section."""

    starts: int  # maximizing images (random starts), and as many minimizing ones
    natural_top: int  # most-driving natural images of the pool
    controls: int  # natural images shown to every neuron
    adversarial_sources: int  # controls perturbed up and down, per neuron
    synthesis: SynthesisSettings
    adversarial: AdversarialSettings
    batched: bool  # all of a chunk's neurons as one bank (a GPU) or one at a time (a CPU)
    device: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> StimulusDesign:
        names = {f.name for f in fields(SynthesisSettings)}
        batched = section["batched"] == "always" or (section["batched"] == "auto" and section["device"] == "cuda")
        adversarial = dict(section["adversarial"])
        return cls(
            starts=section["starts"],
            natural_top=section["natural_top"],
            controls=section["controls"],
            adversarial_sources=adversarial.pop("sources"),
            synthesis=SynthesisSettings(**{k: v for k, v in section.items() if k in names}),
            adversarial=AdversarialSettings(**adversarial),
            batched=batched,
            device=section["device"],
        )


def pool_arrays(pool: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images, image_ids, image_type, split) of a distillation pool."""
    images, image_ids = read_images(pool)
    with xr.open_dataset(pool) as dataset:
        return images, image_ids, dataset["image_type"].values.astype(str), dataset["split"].values.astype(str)


def control_indices(image_types: np.ndarray, split: np.ndarray, n_controls: int, pool: str | Path) -> np.ndarray:
    """The first ``n_controls`` natural images of the held-out pool (never trained on), by pool order."""
    candidates = np.flatnonzero((image_types == "natural") & (split == "heldout"))
    if len(candidates) < n_controls:
        raise InputDataError(
            Path(pool), f"holds {len(candidates)} held-out natural images; synthesis.controls asks for {n_controls}"
        )
    return candidates[:n_controls]


def _stack(per_neuron: Sequence[np.ndarray], group: Sequence[int], device: str) -> torch.Tensor:
    """Per-neuron (n_images, 3, H, W) arrays -> (n_images, len(group), 3, H, W) float32 on ``device``."""
    return torch.from_numpy(np.stack([per_neuron[i] for i in group], axis=1)).float().to(device)


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(n_images, 3, H, W) float pixels -> uint8 (n_images, H, W, 3)."""
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def neuron_stimuli(
    models: Sequence[CompactModel],
    neurons: Sequence[str],
    pool: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    controls: np.ndarray,
    design: StimulusDesign,
    seed: int,
) -> list[dict[str, Any]]:
    """Every neuron's images: one row per image with its pixels (uint8, H, W, 3), kind, source and prediction."""
    images, image_ids, image_types, _ = pool
    size = images.shape[1]
    # one draw per neuron: its images do not depend on how the neurons are grouped into jobs
    starts = [white_noise(rng_for(seed, "synthesis", n), 2 * design.starts, size, NOISE_STD) for n in neurons]
    sources = [adversarial_sources(model, images[controls], controls, design.adversarial_sources) for model in models]
    source_pixels = [images[s].transpose(0, 3, 1, 2).repeat(2, axis=0).astype(np.float64) for s in sources]
    synthesis_direction = torch.tensor([1.0] * design.starts + [-1.0] * design.starts)
    adversarial_direction = torch.tensor([1.0, -1.0] * design.adversarial_sources)
    groups = [list(range(len(models)))] if design.batched else [[i] for i in range(len(models))]
    # each neuron's images together, in neuron order: the stimulus set's order (and so the closed loop's noise
    # draws) does not depend on how the neurons are grouped into jobs
    rows_of: dict[str, list[dict[str, Any]]] = {neuron: [] for neuron in neurons}
    for group in tqdm(groups, desc="synthesis", unit="group", mininterval=10):
        bank = as_bank([models[i] for i in group])
        best, responses = synthesize(bank, _stack(starts, group, design.device), synthesis_direction, design.synthesis)
        perturbed, adversarial_responses = adversarial(
            bank, _stack(source_pixels, group, design.device), adversarial_direction, design.adversarial
        )
        for column, i in enumerate(group):
            neuron = neurons[i]
            synthesised = _to_uint8(best[:, column])
            for j in range(2 * design.starts):
                kind = MAXIMIZING if j < design.starts else MINIMIZING
                rows_of[neuron].append(_row(neuron, kind, j % design.starts, synthesised[j], "", responses[j, column]))
            adversarial_images = _to_uint8(perturbed[:, column])
            for j in range(2 * design.adversarial_sources):
                kind = ADVERSARIAL_UP if j % 2 == 0 else ADVERSARIAL_DOWN
                source = image_ids[sources[i][j // 2]]
                rows_of[neuron].append(
                    _row(neuron, kind, j // 2, adversarial_images[j], source, adversarial_responses[j, column])
                )
    natural = np.flatnonzero(image_types == "natural")
    for model, neuron in zip(models, neurons, strict=True):
        predicted = predict(model, images[natural])[:, 0]
        for rank, index in enumerate(np.argsort(-predicted, kind="stable")[: design.natural_top]):
            rows_of[neuron].append(
                _row(neuron, NATURAL_TOP, rank, images[natural[index]], image_ids[natural[index]], predicted[index])
            )
    return [row for neuron in neurons for row in rows_of[neuron]]


def adversarial_sources(model: CompactModel, control_images: np.ndarray, controls: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` controls the model predicts to drive its neuron most: a neuron silent on an image cannot be driven
    lower (and a rectified model has no gradient there), so these leave room both ways."""
    predicted = predict(model, control_images)[:, 0]
    return controls[np.argsort(-predicted, kind="stable")[:n]]


def _row(neuron: str, kind: str, index: int, pixels: np.ndarray, source: str, predicted: Any) -> dict[str, Any]:
    return {
        "image": f"{neuron}_{kind}{index:02d}",
        "neuron": neuron,
        "stimulus": kind,
        "source": source,
        "predicted": float(predicted),
        "pixels": pixels,
    }


def synthesis_chunk_job(
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
    arrays = pool_arrays(pool)
    controls = control_indices(arrays[2], arrays[3], design.controls, pool)
    started = time.perf_counter()
    rows = neuron_stimuli(models, neurons, arrays, controls, design, seed)
    seconds = time.perf_counter() - started
    write_image_set(
        output,
        np.stack([row["pixels"] for row in rows]),
        [row["image"] for row in rows],
        np.array([row["stimulus"] for row in rows]),
        {**provenance_attrs({"synthesis": dict(synthesis), "seed": seed, "session": session}, [pool, *cards])},
        extra_coords={key: np.array([row[key] for row in rows]) for key in ("neuron", "source", "predicted")},
    )
    log.info("%s: %d images for %d neurons in %.1f s", Path(chunk_dir).name, len(rows), len(neurons), seconds)


def read_stimuli(path: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """(images, table) of a stimulus image set: one row per image (image, stimulus, neuron, source, predicted)."""
    images, image_ids = read_images(path)
    with xr.open_dataset(path) as dataset:
        columns = {"stimulus": dataset["image_type"].values.astype(str)}
        for name in ("neuron", "source", "predicted"):
            if name not in dataset.coords:
                raise InputDataError(Path(path), f"is not a stimulus set: it has no '{name}' per image")
            columns[name] = dataset[name].values
    table = pd.DataFrame({"image": image_ids, **columns})
    table["neuron"] = table["neuron"].astype(str)
    table["source"] = table["source"].astype(str).replace("nan", "")
    return images, table


def collect_stimuli_job(
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
    images, image_ids, image_types, split = pool_arrays(pool)
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
    table["file"] = [f"images/{image}.png" for image in table["image"]]
    attrs = provenance_attrs({"synthesis": dict(synthesis), "session": session}, [pool, *chunk_files])
    with atomic_directory(output_dir) as temporary:
        (temporary / "images").mkdir()
        for image, name in zip(pixels, table["file"], strict=True):
            Image.fromarray(image).save(temporary / name)
        write_image_set(
            temporary / "stimuli.nc",
            pixels,
            table["image"].to_numpy(),
            table["stimulus"].to_numpy(),
            attrs,
            extra_coords={key: table[key].to_numpy() for key in ("neuron", "source", "predicted")},
        )
        index = PredictionIndex(session, model_neurons, table["image"].to_numpy())
        write_predictions(temporary / "predictions.nc", predictions, index, {"session": session}, list(map(str, cards)))
        with atomic_path(temporary / "manifest.csv") as manifest:
            table.to_csv(manifest, index=False, float_format="%.6g")
    counts = table["stimulus"].value_counts().to_dict()
    log.info("%s: %d stimuli for %d neurons: %s", session, len(table), len(model_neurons), counts)
