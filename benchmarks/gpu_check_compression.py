"""The paper-scale issue's GPU check, as one script: one compression job's training on the pool read by index.

64 students of the paper's width (100 filters, 112 px, batch 64) train as one bank (bf16 autocast on CUDA) on
images regenerated from a pool recipe by loader processes and on teacher labels read block by block from a label
file, exactly as `compress_neurons` trains them (`distill_pool`); then one student alone on the same stream. It
reports images/s per neuron for both, the GPU's peak memory, and the GPU-hours projected for the paper's 219
neurons (`config/paper.yaml`: one pass over 12 million images, then 30,000 retraining steps), against the target
of one GPU-day.

    python benchmarks/gpu_check_compression.py --device cuda            # on the GPU machine (about 5 minutes)
    python benchmarks/gpu_check_compression.py --device cpu --filters 4 --image-size 16 --neurons 4 --steps 3

Writes results/bench/gpu_check_compression.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.compact.distill import DistillSettings, distill_pool
from compactcortex.compact.stream import PoolData
from compactcortex.io.teacher_labels import CHUNK_IMAGES, TeacherLabels, TeacherLabelWriter
from compactcortex.models.compact import initial_student
from compactcortex.models.compact_bank import StudentBank
from compactcortex.pool import PoolRecipe

PAPER_NEURONS = 219
PAPER_IMAGES = (187_500 + 30_000) * 64  # config/paper.yaml: one pass over 12M images, then the retraining
STIMULUS_SIZE = 112  # the recorded images' side: the pool's


def _recipe(n_images: int) -> PoolRecipe:
    empty = np.empty((0, STIMULUS_SIZE, STIMULUS_SIZE, 3), dtype=np.uint8)
    shares = {"natural": 0.5, "dead_leaves": 0.125, "texture": 0.125, "gaudy": 0.1, "dots": 0.075, "shapes": 0.075}
    counts = {name: int(share * n_images) for name, share in shares.items()}
    return PoolRecipe(
        seed=0, session="gpu_check", image_size=STIMULUS_SIZE, counts=counts, augmented=0, fit_images=empty,
        other_sessions=0, other_images=empty, folders=[], heldout=1000,
    )  # fmt: skip


def _labels(path: Path, recipe: PoolRecipe, neurons: int) -> list[str]:
    """Random teacher labels (throughput does not depend on their values), written as the teacher job does."""
    ids = [f"n{k:03d}" for k in range(neurons)]
    rng = np.random.default_rng(0)
    with TeacherLabelWriter(path, ids, len(recipe), recipe.heldout_start, {}) as writer:
        for start in range(0, len(recipe), CHUNK_IMAGES):
            stop = min(len(recipe), start + CHUNK_IMAGES)
            writer.write(start, rng.normal(size=(neurons, stop - start)).astype(np.float32))
    return ids


def _train(data: PoolData, students: list, settings: DistillSettings, device: str) -> dict[str, Any]:
    model = StudentBank.from_students(students) if len(students) > 1 else students[0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    distill_pool([model], data, settings)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    images = settings.steps * settings.batch_size
    result = {
        "neurons": len(students),
        "steps": settings.steps,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "neuron_images_per_s": len(students) * images / seconds,
    }
    if device.startswith("cuda"):
        result["gpu_peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--filters", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--neurons", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300, help="timed Adam steps of batch 64 (after 20 warm-up)")
    parser.add_argument("--pool", type=int, default=200_000, help="pool images (the stream never holds them)")
    parser.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 1) - 1))
    parser.add_argument("--output", default="results/bench/gpu_check_compression.json")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    recipe = _recipe(args.pool)
    settings = DistillSettings(
        steps=args.steps, batch_size=64, learning_rate=1e-4, device=args.device, recalibrate_batchnorm=False, seed=0
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "teacher.nc"
        ids = _labels(path, recipe, args.neurons)
        results = {}
        for name, count in (("bank", args.neurons), ("one_student", 1)):
            with TeacherLabels(path, ids[:count]) as labels:
                data = PoolData(recipe, labels, len(recipe), recipe.heldout, CHUNK_IMAGES, workers=args.workers)
                students = [initial_student(args.filters, args.image_size, [120.0] * 3, k) for k in range(count)]
                _train(data, students, DistillSettings(**{**settings.__dict__, "steps": 20}), args.device)  # warm-up
                results[name] = _train(data, students, settings, args.device)
    per_neuron = results["bank"]["neuron_images_per_s"]
    gpu_hours = PAPER_NEURONS * PAPER_IMAGES / per_neuron / 3600
    summary = {
        "device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu",
        "precision": "bf16 autocast, channels-last" if args.device.startswith("cuda") else "float32",
        "filters": args.filters,
        "image_size": args.image_size,
        "loader_workers": args.workers,
        **results,
        "bank_speedup_per_neuron": per_neuron / results["one_student"]["neuron_images_per_s"],
        "projected_gpu_hours_paper": gpu_hours,  # 219 neurons, 217,500 steps of 64 each, banks of this size
        "under_one_gpu_day": gpu_hours < 24,
    }
    print(json.dumps(summary, indent=2))
    write_text_atomic(args.output, json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
