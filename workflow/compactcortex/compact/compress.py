"""Compression of a session's neurons: distil a student per neuron, prune it, rebuild and retrain it
(docs/method.md section 4).

Every student of a session sees the same batches (a per-session seed), and each starts from its own seeded
initialisation, so a neuron's compact model does not depend on which chunk it was trained in, nor on whether the
chunk trained its students one by one or as one batched network (``StudentBank``, the fast path on a GPU).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from compactcortex.compact.distill import DistillSettings, distill, fidelity_r2
from compactcortex.compact.prune import PruneSettings, prune
from compactcortex.config import settings_from
from compactcortex.models.compact import N_LAYERS, CompactModel, initial_student
from compactcortex.models.compact_bank import StudentBank
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressSettings:
    """How a neuron is compressed; ``from_config`` reads the config's ``compact`` section."""

    filters: int
    image_size: int
    distill: DistillSettings
    retrain_steps: int
    prune: PruneSettings
    probe_images: int
    batched: bool

    @classmethod
    def from_config(cls, compact: Mapping[str, Any], seed: int, session: str, device: str) -> CompressSettings:
        batch_seed = int(rng_for(seed, "compact", "batches", session).integers(2**31))
        batched = compact["batched"] == "always" or (compact["batched"] == "auto" and device.startswith("cuda"))
        return settings_from(
            cls,
            compact,
            distill=settings_from(DistillSettings, compact, seed=batch_seed, device=device),
            prune=settings_from(PruneSettings, compact["prune"]),
            probe_images=compact["prune"]["probe_images"],
            batched=batched,
        )


def initial_seed(seed: int, session: str, neuron: str) -> int:
    """The seed of a neuron's student initialisation."""
    return int(rng_for(seed, "compact", "init", session, neuron).integers(2**31))


def train_students(
    students: Sequence[CompactModel],
    images: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    settings: DistillSettings,
    batched: bool,
) -> list[CompactModel]:
    """Distil each student on its column of ``targets`` (image, student): one network for all, or one by one."""
    if batched and len(students) > 1:
        bank = StudentBank.from_students(students)
        start = time.perf_counter()
        history = distill(bank, images, targets, settings)
        log.info(
            "%d students as one network: %d steps in %.1f s, last epoch's loss %.3f (summed over students)",
            len(students),
            settings.steps,
            time.perf_counter() - start,
            history["epoch_loss"][-1],
        )
        dtype = next(students[0].parameters()).dtype
        return [s.to(dtype=dtype, memory_format=torch.contiguous_format) for s in bank.to_students()]
    for index, student in enumerate(students):
        start = time.perf_counter()
        history = distill(student, images, targets[:, index], settings)
        log.info(
            "student %d/%d: %d steps in %.1f s, last epoch's loss %.3f",
            index + 1,
            len(students),
            settings.steps,
            time.perf_counter() - start,
            history["epoch_loss"][-1],
        )
    return [student.to(memory_format=torch.contiguous_format) for student in students]


def fold_output_scale_(model: CompactModel, scale: float, offset: float) -> CompactModel:
    """Make the model predict ``scale * output + offset``, exactly, by rescaling its readout (in place)."""
    with torch.no_grad():
        model.layers["Beta"].weight.mul_(scale)
        model.layers["Beta"].bias.mul_(scale).add_(offset)
    return model


def compress_neurons(
    pool_images: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    neuron_ids: Sequence[str],
    settings: CompressSettings,
    *,
    seed: int,
    session: str,
) -> list[tuple[CompactModel, dict[str, Any]]]:
    """One compact model per neuron (row of ``labels``, the teacher's labels of the pool), with its report.

    The students learn the labels z-scored on the training images; the returned models predict the teacher's units
    (the z-scoring is folded into the readout). Fidelity is r^2 to the teacher on the held-out pool images.
    """
    labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
    if labels.shape != (len(neuron_ids), len(pool_images)) or split.shape != (len(pool_images),):
        raise ValueError(f"labels {labels.shape}, split {split.shape} and {len(pool_images)} pool images disagree")
    train, heldout = split == "train", split == "heldout"
    train_images, heldout_images = pool_images[train], pool_images[heldout]
    # Each neuron's statistics from its own contiguous row: a reduction over a strided 2-D slice sums in another
    # order (how many neurons share the array would change the last bit of a neuron's model).
    mean = np.array([labels[row][train].mean() for row in range(len(labels))])
    sd = np.array([labels[row][train].std() for row in range(len(labels))])
    if np.any(sd == 0):
        raise ValueError(f"the teacher's labels are constant for {list(np.asarray(neuron_ids)[sd == 0])}")
    targets = ((labels - mean[:, None]) / sd[:, None]).T  # (image, neuron)
    means = train_images.reshape(-1, 3).mean(axis=0, dtype=np.float64).tolist()
    seeds = [initial_seed(seed, session, str(neuron)) for neuron in neuron_ids]
    students = [initial_student(settings.filters, settings.image_size, means, s) for s in seeds]
    n = len(students)
    x_train = students[0].preprocess(train_images)  # the students share the input: preprocessed once
    x_heldout = students[0].preprocess(heldout_images)

    start = time.perf_counter()
    students = train_students(students, x_train, targets[train], settings.distill, settings.batched)
    distill_seconds = (time.perf_counter() - start) / n
    unpruned = [float(fidelity_r2(s, x_heldout, targets[heldout, i])[0]) for i, s in enumerate(students)]

    log.info("distilled %d students; pruning them on %d probe images", n, min(settings.probe_images, train.sum()))
    probe = np.flatnonzero(train)[: settings.probe_images]
    pruned, prune_reports, prune_seconds = [], [], []
    for index, student in enumerate(students):
        start = time.perf_counter()
        model, report = prune(student, pool_images[probe], targets[probe, index], settings.prune)
        prune_seconds.append(time.perf_counter() - start)
        pruned.append(model)
        prune_reports.append(report)
    before_retrain = [float(fidelity_r2(m, x_heldout, targets[heldout, i])[0]) for i, m in enumerate(pruned)]

    log.info("pruned: filters %s; retraining", [list(m.filters) for m in pruned])
    start = time.perf_counter()
    retrain = replace(settings.distill, steps=settings.retrain_steps)
    final = train_students(pruned, x_train, targets[train], retrain, settings.batched)
    retrain_seconds = (time.perf_counter() - start) / n

    results = []
    for index, model in enumerate(final):
        model = model.cpu().eval()
        fidelity = float(fidelity_r2(model, x_heldout, targets[heldout, index])[0])
        fold_output_scale_(model, float(sd[index]), float(mean[index]))
        report = prune_reports[index]
        results.append(
            (
                model,
                {
                    "neuron": str(neuron_ids[index]),
                    "init_seed": seeds[index],
                    "filters_initial": [settings.filters] * N_LAYERS,
                    "filters": list(model.filters),
                    "n_parameters": model.n_parameters(),
                    "fidelity_r2": fidelity,
                    "fidelity_r2_unpruned": unpruned[index],
                    "fidelity_r2_pruned_before_retraining": before_retrain[index],
                    "kept_filters": report["kept"],
                    "variance_counts": report["variance_counts"],
                    "seconds": {
                        "distill": distill_seconds,
                        "prune": prune_seconds[index],
                        "retrain": retrain_seconds,
                    },
                    "training": {
                        "pool_train_images": int(train.sum()),
                        "pool_heldout_images": int(heldout.sum()),
                        "probe_images": int(probe.size),
                        "steps": settings.distill.steps,
                        "retrain_steps": settings.retrain_steps,
                        "batched": settings.batched and n > 1,
                    },
                    "teacher_mean": float(mean[index]),
                    "teacher_sd": float(sd[index]),
                },
            )
        )
        log.info(
            "%s: filters %s, %d parameters, fidelity r2 %.3f (unpruned %.3f)",
            neuron_ids[index],
            list(model.filters),
            model.n_parameters(),
            fidelity,
            unpruned[index],
        )
    return results
