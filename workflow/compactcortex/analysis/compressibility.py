"""How compact models compute (docs/method.md section 6, Fig. 3): filters per layer, where the bottleneck (the
consolidation step) falls, and how similar the early filters of different neurons' models are.

Early filters: every model's layer-0 kernels (3 x 5 x 5), each signed by its BatchNorm scale (a negative scale
flips what the filter detects) and scaled to unit length, are clustered by spherical k-means. A small shared set
covers most models when a few cluster centres match most of every model's filters; the same procedure on random
filters of the same count is the chance level.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from compactcortex.io.compact_models import FILTER_COLUMNS
from compactcortex.io.tables import read_table
from compactcortex.models.compact import CompactModel, initial_student
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)


def bottleneck_layer(filters: Sequence[int]) -> int:
    """The narrowest of layers 1-4 (the earliest where tied): the consolidation step."""
    return 1 + int(np.argmin(filters[1:]))


def filters_table(model_tables: Sequence[str | Path]) -> pd.DataFrame:
    """One row per compact model: session, neuron, filters per layer, parameters, the bottleneck layer and the
    path of its card (the tables hold it relative to themselves)."""
    parts = []
    for path in model_tables:
        table = read_table(path)
        table.insert(0, "session", Path(path).parent.name)
        table["card"] = [str(Path(path).parent / card) for card in table["card"]]
        parts.append(table)
    table = pd.concat(parts, ignore_index=True)
    table["bottleneck_layer"] = [bottleneck_layer(filters) for filters in table[FILTER_COLUMNS].to_numpy()]
    return table[["session", "neuron", *FILTER_COLUMNS, "n_parameters", "bottleneck_layer", "card"]]


def _unit_rows(weight: np.ndarray) -> np.ndarray:
    return weight / np.maximum(np.linalg.norm(weight, axis=1, keepdims=True), 1e-12)


def _layer0(model: CompactModel) -> np.ndarray:
    return model.layers["layer0_conv"].weight.detach().double().flatten(1).numpy()


def _bn_sign(model: CompactModel) -> np.ndarray:
    sign = np.sign(model.layers["layer0_bn"].weight.detach().double().numpy())
    return np.where(sign == 0, 1.0, sign)[:, None]


def trained_early_filters(model: CompactModel) -> np.ndarray:
    """A model's layer-0 kernels (filters, 75), signed by their BatchNorm scale, unit length (any compact model,
    the published ones included)."""
    return _unit_rows(_layer0(model) * _bn_sign(model))


def early_filters(model: CompactModel, card: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A model's layer-0 kernels (filters, 75), signed by their BatchNorm scale, unit length: as trained
    (``trained``) and what training added to the seeded initial kernels (``learned``; at demo training lengths
    the initial random kernels are still a large part of the trained ones)."""
    sign = _bn_sign(model)
    architecture = card["architecture"]
    initial = initial_student(
        card["filters_initial"][0], architecture["image_size"], architecture["means"], card["init_seed"]
    )
    kept = card["kept_filters"]
    kept = json.loads(kept) if isinstance(kept, str) else kept
    trained = _layer0(model)
    learned = trained - _layer0(initial)[kept[0]]
    return {"trained": _unit_rows(trained * sign), "learned": _unit_rows(learned * sign)}


def spherical_kmeans(
    vectors: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(centres (k, d), labels): k-means on unit vectors by cosine similarity, k-means++ initialisation."""
    n = len(vectors)
    k = min(k, n)
    centres = [vectors[rng.integers(n)]]
    for _ in range(1, k):
        distance = 1 - np.max(vectors @ np.array(centres).T, axis=1)
        weights = np.maximum(distance, 0) ** 2
        total = weights.sum()
        centres.append(vectors[rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)])
    centres = np.array(centres)
    labels = np.full(n, -1)
    for _ in range(iterations):
        new_labels = np.argmax(vectors @ centres.T, axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(k):
            members = vectors[labels == j]
            if len(members):
                mean = members.sum(axis=0)
                centres[j] = mean / max(np.linalg.norm(mean), 1e-12)
    return centres, labels


def shared_filter_coverage(
    similarity: np.ndarray, labels: np.ndarray, model_of: np.ndarray, threshold: float, cover: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters ordered by how many models use them, and for the first m of them (m = 1..k) the share of models of
    which at least ``cover`` of the filters lie within ``threshold`` cosine similarity of one of those centres."""
    k = similarity.shape[1]
    models = np.unique(model_of)
    users = np.array([len(np.unique(model_of[labels == j])) for j in range(k)])
    order = np.argsort(-users, kind="stable")
    coverage = []
    for m in range(1, k + 1):
        near = similarity[:, order[:m]].max(axis=1) >= threshold
        shares = np.array([near[model_of == model].mean() for model in models])
        coverage.append(float(np.mean(shares >= cover)))
    return order, np.array(coverage)


def cluster_early_filters(
    filters: np.ndarray, model_of: np.ndarray, k: int, cover: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Spherical k-means of unit filters, and the same for as many random unit filters (the chance level). A filter
    is near a centre when its cosine similarity exceeds the 95th percentile that random filters reach."""
    centres, labels = spherical_kmeans(filters, k, rng)
    random = _unit_rows(rng.normal(size=filters.shape))
    random_centres, random_labels = spherical_kmeans(random, k, rng)
    random_similarity = np.max(random @ random_centres.T, axis=1)
    threshold = float(np.quantile(random_similarity, 0.95))
    similarity = filters @ centres.T
    order, coverage = shared_filter_coverage(similarity, labels, model_of, threshold, cover)
    _, random_coverage = shared_filter_coverage(random @ random_centres.T, random_labels, model_of, threshold, cover)
    return {
        "centres": centres[order],
        "labels": np.argsort(order)[labels],  # relabelled: cluster 0 is the one most models use
        "similarity": similarity[np.arange(len(filters)), labels],
        "similarity_random": random_similarity,
        "coverage": coverage,
        "coverage_random": random_coverage,
        "threshold": threshold,
    }


def early_filter_dataset(
    found: Mapping[str, Sequence[np.ndarray]],
    model_of: np.ndarray,
    neurons: Sequence[str],
    clusters: int,
    cover: float,
    seed: int,
    attrs: Mapping[str, Any],
) -> tuple[xr.Dataset, list[str]]:
    """The clustering of each kind of early filters (``found``: kind -> per-model (filters, 75) arrays; ``model_of``
    the model of every filter), against random filters of the same count, as one dataset, and a line per kind."""
    variables: dict[str, Any] = {}
    notes = []
    for name, parts in found.items():
        result = cluster_early_filters(
            np.concatenate(parts), model_of, clusters, cover, rng_for(seed, "analysis", name)
        )
        side = int(round(np.sqrt(result["centres"].shape[1] / 3)))
        variables |= {
            f"{name}_centre": (("cluster", "channel", "y", "x"), result["centres"].reshape(-1, 3, side, side)),
            f"{name}_coverage": (("n_clusters",), result["coverage"]),
            f"{name}_coverage_random": (("n_clusters",), result["coverage_random"]),
            f"{name}_cluster": (("filter",), result["labels"]),
            f"{name}_similarity": (("filter",), result["similarity"]),
            f"{name}_similarity_random": (("filter",), result["similarity_random"]),
            f"{name}_threshold": ((), result["threshold"]),
        }
        similarity, random = np.median(result["similarity"]), np.median(result["similarity_random"])
        notes.append(
            f"{name}: median similarity {similarity:.2f} (random {random:.2f}); {clusters} clusters cover "
            f"{100 * result['coverage'][-1]:.0f}% of models (random {100 * result['coverage_random'][-1]:.0f}%)"
        )
    k = min(clusters, len(model_of))
    dataset = xr.Dataset(
        {**variables, "filter_model": (("filter",), model_of)},
        coords={
            "cluster": np.arange(k),
            "n_clusters": np.arange(1, k + 1),
            "channel": ["R", "G", "B"],
            "model": ("model", np.asarray(neurons)),
        },
        attrs={
            "cover": cover,
            "description": "layer-0 filters of every compact model clustered by spherical k-means; a model is "
            "covered by m clusters when at least `cover` of its filters are nearer one of them than 95% of random "
            "filters get to theirs",
            **attrs,
        },
    )
    return dataset, notes
