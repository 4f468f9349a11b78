"""`make bench`: the distillation pool at growing sizes (10 thousand, 100 thousand, 1 million images).

The teacher-label job and one compression job run on a pool of each size, each in a fresh process, with tiny
networks and few steps (the point is memory and throughput, not accuracy): a tiny ensemble member on the `pixels`
backbone, two students of 4 filters at 16 px, 40 + 10 Adam steps. Per size: the peak resident memory of each job,
its images per second, and the disk its outputs take. The pool is a recipe read by index, so the target is peak
memory at 1M within 10% of that at 10k, and the disk the labels (neurons x images x 4 bytes).

Writes results/bench/pool_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench import in_child, peak_memory_mb

from compactcortex.atomic import write_text_atomic
from compactcortex.config import validate_config

SESSION = "s1"
IMAGE_SIZE = 32  # the smallest the procedural generators draw
NEURONS = 2
HELDOUT = 1000


def _config(pool_images: int) -> dict[str, Any]:
    """The schema's defaults with tiny networks, and a pool of ``pool_images`` cheap procedural images."""
    config = validate_config(
        {
            "dataset": "bench",
            "source": {"kind": "virtual_lab"},
            "sessions": [
                {"id": "a", "role": "train"},
                {"id": "b", "role": "validation"},
                {"id": SESSION, "role": "test"},
            ],
            "features": {"backbone": "pixels", "layer": "pixels", "input_size": 16, "batch_size": 256},
            "compact": {
                "filters": 4,
                "image_size": 16,
                "steps": 40,
                "retrain_steps": 10,
                "batch_size": 64,
                "calibration_images": 2000,
                "prune": {"probe_images": 256},
                "pool": {
                    "images": {"shapes": pool_images // 2, "dots": pool_images - pool_images // 2},
                    "heldout": HELDOUT,
                },
            },
        }
    )
    config["compact"]["pool"]["augmented"] = 0
    return config


def _write_inputs(folder: Path) -> dict[str, Any]:
    """A session dataset, a tiny member (random weights) and its readouts of the session's neurons."""
    import torch

    from compactcortex.io.members import save_member, save_readouts
    from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset
    from compactcortex.models.ensemble import CoreShape, FactorisedReadout, Member
    from compactcortex.response_scale import ResponseScale

    rng = np.random.default_rng(0)
    n = 60
    dataset = build_session_dataset(
        source="bench", session=SESSION, monkey="M", responses=rng.poisson(3.0, (NEURONS, n, 4)).astype(float),
        images=rng.integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
        neuron_ids=np.array([f"{SESSION}_n{k:03d}" for k in range(NEURONS)]),
        image_ids=np.array([f"{SESSION}_img{k:05d}" for k in range(n)]), image_types=np.array(["natural"] * n),
        response_kind="single_trial", latency_ms=50, window_ms=100, reliability_splits=5, min_reliability=-2.0,
        seed=0, attrs={"config_sha256": "0" * 64, "code_version": "bench"},
    )  # fmt: skip
    paths = {"dataset": folder / f"{SESSION}.nc", "member": folder / "member00.pt", "readouts": folder / "readouts.pt"}
    write_session_dataset(dataset, paths["dataset"])
    torch.manual_seed(0)
    shape = CoreShape(in_channels=3, width=16, bottleneck=8, residual_blocks=1)
    member = Member(shape, {"a": 3}, (8, 8))
    contents = {"shape": shape.as_dict(), "state_dict": member.state_dict(), "neurons_per_session": {"a": 3}}
    save_member(paths["member"], contents)
    readout = FactorisedReadout(shape.width, NEURONS, 8, 8)
    scale = ResponseScale(np.zeros(NEURONS), np.ones(NEURONS), "spikes per 100 ms counting window")
    save_readouts(paths["readouts"], "factorised", [f"{SESSION}_n{k:03d}" for k in range(NEURONS)], [readout], scale)
    return {key: str(path) for key, path in paths.items()}


def _teacher_child(paths: dict, config: dict, output: str, queue: multiprocessing.Queue) -> None:
    import torch

    from compactcortex.jobs.compact import teacher_labels

    torch.set_num_threads(1)
    start = time.perf_counter()
    teacher_labels(
        member_paths=[paths["member"]], readouts=paths["readouts"], dataset=paths["dataset"], output=output,
        pool=config["compact"]["pool"], features=config["features"], session=SESSION, seed=0, device="cpu",
    )  # fmt: skip
    queue.put((time.perf_counter() - start, peak_memory_mb()))


def _compress_child(paths: dict, config: dict, teacher: str, folder: str, queue: multiprocessing.Queue) -> None:
    import torch

    from compactcortex.io.compression_plan import write_plan
    from compactcortex.jobs.compact import compress_neurons

    torch.set_num_threads(1)
    plan = Path(folder) / "plan.json"
    neurons = [f"{SESSION}_n{k:03d}" for k in range(NEURONS)]
    write_plan(plan, {"chunk000": neurons}, NEURONS)
    compact = {k: v for k, v in config["compact"].items() if k not in ("sessions", "neurons_per_job", "image_cache_mb")}
    start = time.perf_counter()
    compress_neurons(
        teacher=teacher, dataset=paths["dataset"], plan=str(plan), chunk="chunk000",
        output_dir=str(Path(folder) / "models"), compact=compact, session=SESSION, seed=0,
    )  # fmt: skip
    queue.put((time.perf_counter() - start, peak_memory_mb()))


def _disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def bench_size(pool_images: int, folder: Path, paths: dict) -> dict[str, Any]:
    config = _config(pool_images)
    teacher = folder / f"teacher_{pool_images}.nc"
    teacher_seconds, teacher_peak = in_child(_teacher_child, paths, config, str(teacher))
    work = folder / f"compress_{pool_images}"
    work.mkdir()
    compress_seconds, compress_peak = in_child(_compress_child, paths, config, str(teacher), str(work))
    compact = config["compact"]
    trained = (compact["steps"] + compact["retrain_steps"]) * compact["batch_size"]
    return {
        "pool_images": pool_images,
        "teacher_labels": {
            "seconds": teacher_seconds,
            "peak_rss_mb": teacher_peak,
            "images_per_s": pool_images / teacher_seconds,
            "disk_mb": _disk_mb(teacher),
            "labels_mb": NEURONS * pool_images * 4 / 2**20,
        },
        "compress_neurons": {
            "seconds": compress_seconds,
            "peak_rss_mb": compress_peak,
            "images_per_s": trained / compress_seconds,  # training images regenerated and trained on, per second
            "disk_mb": _disk_mb(work / "models"),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="pool sizes, comma-separated")
    parser.add_argument("--output", default="results/bench/pool_scaling.json")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        paths = _write_inputs(folder)
        for size in sizes:
            result = bench_size(size, folder, paths)
            results.append(result)
            for job in ("teacher_labels", "compress_neurons"):
                r = result[job]
                print(
                    f"{size:>9,} images  {job:<17} {r['seconds']:>8.1f} s  peak {r['peak_rss_mb']:>7.1f} MB  "
                    f"{r['images_per_s']:>9,.0f} images/s  disk {r['disk_mb']:>8.2f} MB"
                )
    first, last = results[0], results[-1]
    growth = {
        job: last[job]["peak_rss_mb"] / first[job]["peak_rss_mb"] - 1 for job in ("teacher_labels", "compress_neurons")
    }
    summary = {
        "sizes": results,
        "peak_rss_growth": growth,  # from the smallest pool to the largest (target: under 10%)
        "flat_memory": all(abs(g) <= 0.10 for g in growth.values()),
    }
    for job, g in growth.items():
        print(f"{job}: peak memory {100 * g:+.1f}% from {first['pool_images']:,} to {last['pool_images']:,} images")
    write_text_atomic(args.output, json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
