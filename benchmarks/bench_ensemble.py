"""Ensemble benchmarks: backbone feature extraction and member training throughput.

CPU (part of `make bench`): features at the default and the paper's input size; one member's training
throughput at the default width; and what K members cost against one. On a GPU (the prepared device
check): one member at paper scale (1024 x 14 x 14 features, width 512, bottleneck 256, 4 blocks) for a
few hundred steps with bf16 autocast and channels-last: images/s and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.backbones import load_backbone
from compactcortex.config import DEFAULT_CONFIG_PATH, load_config, session_roles
from compactcortex.models.ensemble import CoreShape, Member, autocast_for, count_parameters, embedding_size, to_device

PAPER = {
    "in_channels": 1024,
    "hw": 14,
    "width": 512,
    "bottleneck": 256,
    "residual_blocks": 4,
    "sessions": 40,
    "neurons": 60,
}


def default_scale(config_path: Path = DEFAULT_CONFIG_PATH) -> dict[str, int]:
    """One member of the default config: its backbone features, core widths, training sessions and neurons."""
    config = load_config(config_path)
    features = config["features"]
    channels, side, _ = load_backbone(features["backbone"]).feature_shape(features["layer"], features["input_size"])
    return {
        **CoreShape.from_config(config["ensemble"], channels).as_dict(),
        "hw": side,
        "sessions": list(session_roles(config).values()).count("train"),
        "neurons": config["virtual_lab"]["roles"]["train"]["n_neurons"],
    }


def feature_throughput(input_size: int, n_images: int = 128, layer: str = "blocks.8") -> float:
    backbone = load_backbone("efficientnet_lite0")
    images = np.random.default_rng(0).integers(0, 256, (n_images, 64, 64, 3), dtype=np.uint8)
    backbone.extract(images[:8], [layer], input_size=input_size, batch_size=8)  # warm-up
    start = time.perf_counter()
    backbone.extract(images, [layer], input_size=input_size, batch_size=64)
    return n_images / (time.perf_counter() - start)


def member_throughput(scale: dict, device: str, steps: int, batch_size: int, threads: int | None = None) -> dict:
    """Training steps of one member on random features of the given scale (the cost does not depend on them)."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    shape = CoreShape(scale["in_channels"], scale["width"], scale["bottleneck"], scale["residual_blocks"])
    hw = (scale["hw"], scale["hw"])
    sessions = {f"s{index}": scale["neurons"] for index in range(scale["sessions"])}
    member = Member(shape, sessions, embedding_size(hw)).to(device)
    if device.startswith("cuda"):
        member = member.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
    optimizer = torch.optim.SGD(member.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    features = torch.randn(batch_size, scale["in_channels"], *hw, dtype=torch.float16)
    target = torch.randn(batch_size, scale["neurons"], device=device)

    def step(index: int) -> None:
        with autocast_for(device):
            prediction = member(to_device(features, device), f"s{index % scale['sessions']}")
        loss = torch.mean((prediction.float() - target) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for index in range(5):
        step(index)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(steps):
        step(index)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "images_per_s": steps * batch_size / seconds,
        "steps": steps,
        "batch_size": batch_size,
        "core_parameters": count_parameters(member.core),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
    }
    if device.startswith("cuda"):
        result["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def _concurrent_child(queue: multiprocessing.Queue, scale: dict, steps: int, batch_size: int) -> None:
    queue.put(member_throughput(scale, "cpu", steps, batch_size, threads=1)["images_per_s"])


def concurrent_members(scale: dict, n_members: int, steps: int, batch_size: int) -> float:
    """Aggregate images/s of n members trained at once in separate processes, one thread each
    (how Snakemake runs member jobs side by side)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_concurrent_child, args=(queue, scale, steps, batch_size)) for _ in range(n_members)
    ]
    for process in processes:
        process.start()
    rates = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return float(sum(rates))


def run(device: str, paper_scale: bool, steps: int, batch_size: int, members: int) -> dict:
    results: dict = {}
    if device == "cpu":
        results["features_images_per_s"] = {f"{size}px": feature_throughput(size) for size in (128, 224)}
        scale = default_scale()
        one = member_throughput(scale, "cpu", steps, batch_size, threads=2)
        results["member_default_cpu"] = {**one, "scale": scale}
        together = concurrent_members(scale, 2, steps, batch_size)
        results["two_members_side_by_side_images_per_s"] = together
        results["cost_of_k_members_relative_to_one"] = {
            "members": members,
            "serial": float(members),
            "two_jobs_at_once": members * one["images_per_s"] / together,
        }
    if paper_scale or device.startswith("cuda"):
        results["member_paper_scale"] = member_throughput(PAPER, device, steps, batch_size)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paper-scale", action="store_true")
    parser.add_argument("--steps", type=int, default=30)
    ensemble = load_config(DEFAULT_CONFIG_PATH)["ensemble"]
    parser.add_argument("--batch-size", type=int, default=ensemble["batch_size"])
    parser.add_argument("--members", type=int, default=ensemble["members"])
    parser.add_argument("--output", default="results/bench/ensemble.json")
    args = parser.parse_args(argv)
    results = run(args.device, args.paper_scale, args.steps, args.batch_size, args.members)
    print(json.dumps(results, indent=2))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
