"""Compact-model benchmarks: training throughput of students trained together as a bank, and pruning time.

Training: Adam steps (the median step time) on random images and targets (the cost does not depend on them) of 1,
16 and 64 single-neuron students trained together as one ``StudentBank``, and of one plain ``CompactModel``. Reported
per bank: images/s (each neuron sees every image of a step) and neuron-images/s (images/s x neurons: the rate at which
the bank gets through one-neuron training work), against the plain model's images/s. On CUDA: bf16 autocast and
channels-last, and the achieved TFLOP/s (analytic: forward multiply-accumulates x 2 x 3 for forward and backward) as a
fraction of the bf16 dense peak (--peak-tflops; 989 for an H100/H200 SXM).

Pruning: seconds to prune one 16-filter student on a probe set of 256 images (compactcortex.compact.prune.prune).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.compact.distill import per_output_mse, recalibrate_batchnorm_
from compactcortex.compact.prune import PruneSettings, prune
from compactcortex.config import DEFAULT_CONFIG_PATH, load_config
from compactcortex.models.compact import KERNEL_SIZE, N_LAYERS, STRIDES, CompactModel, predict
from compactcortex.models.compact_bank import StudentBank
from compactcortex.models.ensemble import autocast_for

PAPER = {"filters": 100, "image_size": 112, "batch_size": 64}
PRUNE_FILTERS = 16
PRUNE_PROBE_IMAGES = 256


def cpu_default() -> dict[str, int]:
    """The students of the default config (config.yaml at the checkout's root)."""
    compact = load_config(DEFAULT_CONFIG_PATH)["compact"]
    return {key: compact[key] for key in ("filters", "image_size", "batch_size")}


def forward_macs(filters: Sequence[int], image_size: int) -> int:
    """Multiply-accumulates of one compact model's forward pass on one image (convolutions and readout)."""
    k2 = KERNEL_SIZE * KERNEL_SIZE
    side = image_size
    macs = side * side * filters[0] * 3 * k2
    for k in range(1, N_LAYERS):
        side //= STRIDES[k]
        macs += side * side * filters[k - 1] * k2  # depthwise
        macs += side * side * filters[k - 1] * filters[k]  # pointwise
    return macs + side * side * filters[-1]


def training_flops_per_image(filters: Sequence[int], image_size: int) -> float:
    """Forward and backward FLOPs of one neuron on one image: ~3 x the forward's 2 x multiply-accumulates."""
    return 3.0 * 2.0 * forward_macs(filters, image_size)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def training_throughput(
    n_neurons: int | None, filters: int, image_size: int, batch_size: int, steps: int, device: str, warmup: int
) -> dict[str, Any]:
    """Adam steps of a bank of ``n_neurons`` students (None: one plain CompactModel) on one fixed random batch."""
    torch.manual_seed(0)
    students = [CompactModel([filters] * N_LAYERS, image_size=image_size) for _ in range(n_neurons or 1)]
    model: CompactModel | StudentBank = students[0] if n_neurons is None else StudentBank.from_students(students)
    model.to(device, memory_format=torch.channels_last).train()
    images = np.random.default_rng(0).integers(0, 256, (batch_size, image_size, image_size, 3), dtype=np.uint8)
    x = model.preprocess(images).contiguous(memory_format=torch.channels_last)
    y = torch.randn(batch_size, model.n_outputs, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with autocast_for(device):
            prediction = model(x)
        loss = per_output_mse(prediction.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _synchronize(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):  # each step timed: the median resists other processes' interference on a shared CPU
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    n = model.n_outputs
    images_per_s = batch_size / seconds
    result: dict[str, Any] = {
        "model": "CompactModel" if n_neurons is None else "StudentBank",
        "neurons": n,
        "steps": steps,
        "batch_size": batch_size,
        "seconds_per_step": seconds,
        "seconds_per_step_mean": float(np.mean(times)),
        "images_per_s": images_per_s,
        "neuron_images_per_s": images_per_s * n,
    }
    if device.startswith("cuda"):
        result["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def pruning_time(image_size: int, device: str, probe_images: int = PRUNE_PROBE_IMAGES) -> dict[str, Any]:
    """Seconds to prune one 16-filter student: BatchNorm statistics from the probe, targets its own predictions plus
    noise (so the fidelity to preserve is high, as for a distilled student)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    student = CompactModel([PRUNE_FILTERS] * N_LAYERS, image_size=image_size).to(device)
    images = rng.integers(0, 256, (probe_images, image_size, image_size, 3), dtype=np.uint8)
    recalibrate_batchnorm_(student, student.preprocess(images))
    student.eval()
    clean = predict(student, images)
    targets = clean + rng.normal(scale=0.3 * clean.std(), size=clean.shape)
    if device.startswith("cuda"):
        prune(copy.deepcopy(student), images[:32], targets[:32])  # warm-up (kernels, allocator)
        _synchronize(device)
    start = time.perf_counter()
    pruned, report = prune(student, images, targets, PruneSettings())
    _synchronize(device)
    return {
        "seconds_per_neuron": time.perf_counter() - start,
        "probe_images": probe_images,
        "filters_before": report["filters_before"],
        "filters_after": report["filters_after"],
        "fidelity_before": report["fidelity_before"],
        "fidelity_after": report["fidelity_after"],
    }


def run(
    device: str,
    filters: int,
    image_size: int,
    batch_size: int,
    steps: int,
    neurons: Sequence[int],
    peak_tflops: float,
    prune_probe: bool = True,
) -> dict[str, Any]:
    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True
    warmup = 5 if cuda else 1
    flops = training_flops_per_image([filters] * N_LAYERS, image_size)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast, channels-last" if cuda else "float32, channels-last",
        "filters": filters,
        "image_size": image_size,
        "training_gflop_per_neuron_image": flops / 1e9,
    }
    plain = training_throughput(None, filters, image_size, batch_size, steps, device, warmup)
    runs = [plain]
    for n in neurons:
        # the largest banks on the CPU: fewer steps (a step costs ~n times a single model's)
        n_steps = steps if cuda or n <= 16 else max(2, steps // 4)
        runs.append(training_throughput(n, filters, image_size, batch_size, n_steps, device, warmup))
    for result in runs:
        result["speedup_over_one_by_one"] = result["neuron_images_per_s"] / plain["images_per_s"]
        if cuda:
            achieved = result["neuron_images_per_s"] * flops / 1e12
            result["achieved_tflops"] = achieved
            result["fraction_of_bf16_peak"] = achieved / peak_tflops
    results["training"] = runs
    if cuda:
        results["peak_tflops_assumed"] = peak_tflops
    if prune_probe:
        results["pruning"] = pruning_time(image_size, device)
    return results


def _print(results: dict[str, Any]) -> None:
    print(
        f"compact training on {results['device']} ({results['precision']}), {results['filters']} filters, "
        f"{results['image_size']} px, {results['training_gflop_per_neuron_image']:.3f} GFLOP per neuron-image"
    )
    for r in results["training"]:
        line = (
            f"  {r['model']:<12} {r['neurons']:>4} neuron(s): {r['images_per_s']:>10,.1f} images/s, "
            f"{r['neuron_images_per_s']:>11,.1f} neuron-images/s ({r['speedup_over_one_by_one']:.2f}x one by one)"
        )
        if "achieved_tflops" in r:
            line += f", {r['achieved_tflops']:.2f} TFLOP/s ({100 * r['fraction_of_bf16_peak']:.1f}% of peak)"
        print(line)
    if "pruning" in results:
        p = results["pruning"]
        print(
            f"pruning one {PRUNE_FILTERS}-filter student on {p['probe_images']} probe images: "
            f"{p['seconds_per_neuron']:.2f} s per neuron (filters {p['filters_before']} -> {p['filters_after']})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paper-scale", action="store_true", help="100 filters, 112 px, batch 64")
    parser.add_argument("--filters", type=int, help="filters per layer (default: config.yaml; 100 with --paper-scale)")
    parser.add_argument(
        "--image-size", type=int, help="image side in pixels (default: config.yaml; 112 with --paper-scale)"
    )
    parser.add_argument("--batch-size", type=int, help="default: config.yaml; 64 with --paper-scale")
    parser.add_argument("--steps", type=int, default=8, help="timed Adam steps (CPU: a quarter for banks over 16)")
    parser.add_argument("--neurons", default="1,16,64", help="bank sizes, comma-separated")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak of the GPU")
    parser.add_argument("--no-prune", action="store_true", help="skip the pruning benchmark")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads (default: 1 on the CPU, where these tiny convolutions gain little from more and two threads "
        "slow down many-fold when other jobs share the cores; PyTorch's default with --device cuda)",
    )
    parser.add_argument("--output", default="results/bench/compact.json")
    args = parser.parse_args(argv)
    threads = args.threads or (1 if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    scale = PAPER if args.paper_scale else cpu_default()
    neurons = [int(n) for n in args.neurons.split(",") if n.strip()]
    if args.steps < 1 or not neurons or min(neurons) < 1:
        parser.error("--steps and every bank size must be positive")
    results = run(
        args.device,
        args.filters or scale["filters"],
        args.image_size or scale["image_size"],
        args.batch_size or scale["batch_size"],
        args.steps,
        neurons,
        args.peak_tflops,
        prune_probe=not args.no_prune,
    )
    _print(results)
    write_text_atomic(args.output, json.dumps(results, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
