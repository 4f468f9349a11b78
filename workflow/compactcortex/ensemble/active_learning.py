"""Active learning (the paper's adaptive sessions): the candidate images the members disagree on most."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from PIL import Image

from compactcortex.atomic import atomic_path
from compactcortex.ensemble.data import load_features
from compactcortex.ensemble.jobs import load_member, load_readouts
from compactcortex.ensemble.train import embed
from compactcortex.features import read_images
from compactcortex.io.image_sets import write_image_set
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.stimuli import make_image_set

log = logging.getLogger(__name__)


def candidate_pool_job(*, output: str, pool: Mapping[str, Any], image_size: int, seed: int) -> None:
    """Draw the candidate pool: natural crops, procedural and artificial images, never shown before."""
    images, image_types = make_image_set(rng_for(seed, "active_learning", "pool"), dict(pool["images"]), image_size)
    write_image_set(
        output,
        images,
        [f"pool{index:06d}" for index in range(len(images))],
        image_types,
        provenance_attrs({"pool": dict(pool), "image_size": image_size, "seed": seed}),
    )


def member_predictions(
    member_paths: Sequence[str], readout_paths: Sequence[str], features: torch.Tensor, device: str
) -> np.ndarray:
    """(member, neuron, image): each member's prediction for the test sessions' neurons (all sessions)."""
    readouts = [load_readouts(path) for path in readout_paths]
    predictions = []
    for index, path in enumerate(member_paths):
        embedding = embed(load_member(path, device), features, device)
        with torch.inference_mode():
            predictions.append(np.concatenate([session[index](embedding) for session in readouts], axis=0))
    return np.stack(predictions)


def disagreement(predictions: np.ndarray) -> np.ndarray:
    """Per image: the members' variance, averaged over neurons (each neuron's predictions z-scored first,
    so that no neuron dominates by its scale)."""
    mean = predictions.mean(axis=(0, 2), keepdims=True)
    std = predictions.std(axis=(0, 2), keepdims=True)
    standardised = (predictions - mean) / np.where(std > 0, std, 1.0)
    return standardised.var(axis=0).mean(axis=0)


def select_images_job(
    *,
    member_paths: Sequence[str],
    readout_paths: Sequence[str],
    pool_images: str,
    pool_features: str,
    output_dir: str,
    n_images: int,
    layer: str,
    device: str,
) -> None:
    """Export the chosen images (PNG) and a manifest for the next recording session."""
    images, image_ids = read_images(pool_images)
    with xr.open_dataset(pool_images) as pool:
        image_types = pool["image_type"].values.astype(str)
    features = load_features(pool_features, layer, image_ids)
    scores = disagreement(member_predictions(member_paths, readout_paths, features, device))
    chosen = np.argsort(-scores, kind="stable")[:n_images]
    output = Path(output_dir)
    (output / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for rank, index in enumerate(chosen):
        name = f"images/active{rank:04d}.png"
        Image.fromarray(images[index]).save(output / name)
        rows.append(
            {
                "rank": rank,
                "file": name,
                "pool_image": image_ids[index],
                "image_type": image_types[index],
                "member_disagreement": scores[index],
                "pool_median_disagreement": float(np.median(scores)),
            }
        )
    with atomic_path(output / "manifest.csv") as temporary:
        pd.DataFrame(rows).to_csv(temporary, index=False, float_format="%.6g")
    log.info(
        "chose %d of %d candidates; disagreement %.3f (chosen median) vs %.3f (pool median)",
        len(chosen),
        len(scores),
        np.median(scores[chosen]),
        np.median(scores),
    )
