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

from compactcortex.compact.distill import DistillSettings, distill_pool, squared_correlation
from compactcortex.compact.prune import PruneSettings, prune
from compactcortex.compact.stream import PoolData, RangeBatches
from compactcortex.config import settings_from
from compactcortex.models.compact import N_LAYERS, CompactModel, initial_student, predict
from compactcortex.models.compact_bank import StudentBank
from compactcortex.progress import Progress
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
    students: Sequence[CompactModel], data: PoolData, settings: DistillSettings, batched: bool, name: str = "distill"
) -> list[CompactModel]:
    """Distil each student on its neuron's labels (the pool's neurons, in order): one network for all, or one by
    one in step (each batch regenerated once for all of them). Progress is logged under ``name``."""
    start = time.perf_counter()
    if batched and len(students) > 1:
        bank = StudentBank.from_students(students)
        history = distill_pool([bank], data, settings, name=name)[0]
        log.info(
            "%d students as one network: %d steps in %.1f s, last epoch's loss %.3f (summed over students)",
            len(students),
            settings.steps,
            time.perf_counter() - start,
            history["epoch_loss"][-1],
        )
        dtype = next(students[0].parameters()).dtype
        return [s.to(dtype=dtype, memory_format=torch.contiguous_format) for s in bank.to_students()]
    histories = distill_pool(students, data, settings, name=name)
    log.info(
        "%d students: %d steps in %.1f s, last epoch's losses %s",
        len(students),
        settings.steps,
        time.perf_counter() - start,
        [round(history["epoch_loss"][-1], 3) for history in histories],
    )
    return [student.to(memory_format=torch.contiguous_format) for student in students]


def heldout_fidelity(
    students: Sequence[CompactModel], data: PoolData, batch_size: int = 256, name: str = "held-out fidelity"
) -> list[float]:
    """Each student's r^2 to its neuron's labels on the pool's held-out images, streamed in batches (progress
    logged under ``name``, in images)."""
    indices = data.heldout_indices()
    batches = RangeBatches(int(indices[0]), int(indices[-1]) + 1, batch_size)
    predictions: list[list[np.ndarray]] = [[] for _ in students]
    progress = Progress(name, len(indices), "image", logger=log)
    for done, (_, images) in enumerate(data.image_batches(batches, len(batches)), start=1):
        x = students[0].preprocess(images)
        for k, student in enumerate(students):
            predictions[k].append(predict(student, x, batch_size)[:, 0])
        progress.update(min(done * batch_size, len(indices)))
    targets = data.targets_of(indices)
    return [float(squared_correlation(np.concatenate(predictions[k]), targets[:, k])[0]) for k in range(len(students))]


def _pruned_details(neuron: str, report: Mapping[str, Any]) -> str:
    """A pruning progress line's last student: its filters and probe fidelity before and after."""
    return (
        f"last {neuron}: filters {report['filters_after']}, "
        f"probe r2 {report['fidelity_before']:.3f} -> {report['fidelity_after']:.3f}"
    )


def fold_output_scale_(model: CompactModel, scale: float, offset: float) -> CompactModel:
    """Make the model predict ``scale * output + offset``, exactly, by rescaling its readout (in place)."""
    with torch.no_grad():
        model.layers["Beta"].weight.mul_(scale)
        model.layers["Beta"].bias.mul_(scale).add_(offset)
    return model


def compress_neurons(
    data: PoolData, settings: CompressSettings, *, seed: int, session: str
) -> list[tuple[CompactModel, dict[str, Any]]]:
    """One compact model per neuron of ``data`` (the teacher's labels of the pool), with its report.

    The students learn the labels z-scored on the training images; the returned models predict the teacher's units
    (the z-scoring is folded into the readout). Fidelity is r^2 to the teacher on the held-out pool images.
    """
    neuron_ids = data.neuron_ids
    mean, sd = data.label_statistics()
    if np.any(sd == 0):
        raise ValueError(f"the teacher's labels are constant for {list(neuron_ids[sd == 0])}")
    data = replace(data, mean=mean, sd=sd)
    means = data.channel_means(settings.distill.calibration_images)
    seeds = [initial_seed(seed, session, str(neuron)) for neuron in neuron_ids]
    students = [initial_student(settings.filters, settings.image_size, means, s) for s in seeds]
    n = len(students)

    start = time.perf_counter()
    students = train_students(students, data, settings.distill, settings.batched)
    distill_seconds = (time.perf_counter() - start) / n
    unpruned = heldout_fidelity(students, data, name="held-out fidelity (distilled)")

    probe = np.arange(min(settings.probe_images, data.n_train))
    log.info("distilled %d students; pruning them on %d probe images", n, probe.size)
    probe_images, probe_targets = data.images.images(probe), data.targets_of(probe)
    pruned, prune_reports, prune_seconds = [], [], []
    progress = Progress("prune", n, "student", logger=log)
    for index, student in enumerate(students):
        start = time.perf_counter()
        model, report = prune(student, probe_images, probe_targets[:, index], settings.prune)
        prune_seconds.append(time.perf_counter() - start)
        pruned.append(model)
        prune_reports.append(report)
        progress.update(index + 1, _pruned_details(neuron_ids[index], report))
    before_retrain = heldout_fidelity(pruned, data, name="held-out fidelity (pruned)")

    log.info("pruned: filters %s; retraining", [list(m.filters) for m in pruned])
    start = time.perf_counter()
    retrain = replace(settings.distill, steps=settings.retrain_steps)
    final = [model.cpu().eval() for model in train_students(pruned, data, retrain, settings.batched, "retrain")]
    retrain_seconds = (time.perf_counter() - start) / n
    fidelities = heldout_fidelity(final, data, name="held-out fidelity (retrained)")

    results = []
    for index, model in enumerate(final):
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
                    "fidelity_r2": fidelities[index],
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
                        "pool_train_images": data.n_train,
                        "pool_heldout_images": data.heldout,
                        "probe_images": int(probe.size),
                        "calibration_images": min(settings.distill.calibration_images, data.n_train),
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
            fidelities[index],
            unpruned[index],
        )
    return results
