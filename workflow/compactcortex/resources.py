"""What a cluster job asks the scheduler for (``mem_mb``, ``runtime`` in minutes), from the config's sizes.

The estimates are work x a measured rate, with a safety factor: a job that asks for far too little is killed, one
that asks for far too much waits longer in the queue. The rates were measured on the 2-core CPU of
``../shared/PERFORMANCE_NOTES.md`` (``make bench``); on a GPU the dense work runs ``GPU_SPEEDUP`` times faster.
Every estimate grows with what it depends on (steps, images, filters, neurons per job), so a paper-scale config
asks for paper-scale resources without a code change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SAFETY = 3.0
GROWTH = 2  # each retry of a job (profiles/slurm retries once) asks for this much more memory and time
GPU_SPEEDUP = 50.0
MIN_RUNTIME = 10  # minutes
UNKNOWN_SESSION_IMAGES = 5000  # a session's images where the config cannot know them (an NWB or published file)
# seconds per (image x pixel x filter^2) of a compact student's training step (forward and backward): 33 s for
# 1,900 steps of batch 32 at 32 px and 16 filters, one thread
STUDENT_SECONDS = 2.0e-9
# seconds per (image x pixel x filter^2) of a synthesis gradient step (measured: 10 s for 4 neurons x 6 images
# x 400 steps at 64 px through a 32-px student of 16 filters)
SYNTHESIS_SECONDS = 4.0e-9
# seconds per (image x channel^2) of an ensemble member's training on cached features (one epoch of 2,560 images
# at width 128 on an 16 x 16 map: about 1 s)
MEMBER_SECONDS = 1.5e-7
FEATURE_IMAGES_PER_SECOND = 200.0  # EfficientNet-lite0 at 128 px on the CPU
# A student's training step costs about 1 GFLOP per image at the paper's width (100 filters, 112 px;
# ../shared/PERFORMANCE_NOTES.md), in proportion to pixels x filters^2. On a GPU a job's students train as one
# network (a bank), which keeps the GPU busy: ASSUMED 5e13 FLOP/s sustained (about 5% of an H100/H200's bf16 peak,
# for small depthwise convolutions). Not yet measured on a GPU: the GPU check replaces this assumption.
STUDENT_FLOPS_PER_IMAGE = 1e9
GPU_STUDENT_FLOPS = 5e13
POOL_IMAGE_SECONDS = 1e-3  # regenerating one pool image from its recipe (64 px; ../shared/PERFORMANCE_NOTES.md)
WORKER_MB = 500  # a loader worker process (torch imported, a few batches of images in flight)


def _runtime(cpu_seconds: float, device: str, gpu_seconds: float | None = None) -> int:
    """Minutes to ask for: the work's seconds (measured CPU rates, GPU_SPEEDUP times faster on a GPU unless the GPU's
    own estimate is given) x SAFETY, at least MIN_RUNTIME."""
    if device == "cuda":
        seconds = gpu_seconds if gpu_seconds is not None else cpu_seconds / GPU_SPEEDUP
    else:
        seconds = cpu_seconds
    return max(MIN_RUNTIME, math.ceil(SAFETY * seconds / 60))


def for_attempt(value: int, attempt: int) -> int:
    """A job's request on its ``attempt``-th try (1 = the first): a job killed for memory or time is resubmitted
    asking for more, not for the same again."""
    return int(value * GROWTH ** (max(1, attempt) - 1))


def pool_size(compact: Mapping[str, Any]) -> int:
    """Images in a test session's distillation pool: every source's count."""
    pool = compact["pool"]
    folders = sum(folder["count"] for folder in pool.get("folders", []))
    return int(sum(pool["images"].values()) + pool["augmented"] + pool.get("other_sessions", 0) + folders)


def loader_workers(threads: int, device: str) -> int:
    """The processes that regenerate a compression job's pool images ahead of the GPU: its threads but one. On a
    CPU the threads train the students (and regenerating is the job's own work)."""
    return max(0, threads - 1) if device.startswith("cuda") else 0


def compression_resources(compact: Mapping[str, Any], stimulus_size: int) -> dict[str, int]:
    """One compress_neurons job: neurons_per_job students, each trained steps + retrain_steps steps. Its memory does
    not grow with the pool (read by index): the probe images, the image cache, the loader workers."""
    per_image = compact["image_size"] ** 2 * compact["filters"] ** 2
    steps = compact["steps"] + compact["retrain_steps"]
    images = compact["neurons_per_job"] * steps * compact["batch_size"]
    seconds = images * per_image * STUDENT_SECONDS
    flops = STUDENT_FLOPS_PER_IMAGE * (compact["image_size"] / 112) ** 2 * (compact["filters"] / 100) ** 2
    # every batch is regenerated from the pool's recipe once for all of a job's students, by the loader workers
    regenerated = steps * compact["batch_size"] * POOL_IMAGE_SECONDS * (stimulus_size / 64) ** 2
    regenerated /= max(1, loader_workers(compact["threads"], compact["device"]))
    seconds += regenerated
    gpu_seconds = max(images * flops / GPU_STUDENT_FLOPS, regenerated)  # the loaders work while the GPU trains
    # the probe images (uint8 at the stimulus size and their preprocessed float32 copy at the students' size)
    probe_mb = compact["prune"]["probe_images"] * 3 * (stimulus_size**2 + 4 * compact["image_size"] ** 2) / 1e6
    workers_mb = WORKER_MB * loader_workers(compact["threads"], compact["device"])
    memory = 2000 + 2 * probe_mb + compact["image_cache_mb"] + workers_mb
    return {"mem_mb": int(memory), "runtime": _runtime(seconds, compact["device"], gpu_seconds)}


def synthesis_resources(synthesis: Mapping[str, Any], compact: Mapping[str, Any], stimulus_size: int) -> dict[str, int]:
    """One synthesize_images job: 2 x starts images per neuron, and the adversarial images, per chunk; then the
    search for the most-driving natural images (regenerated, and each through every model)."""
    images = (
        2 * synthesis["starts"] * synthesis["steps"]
        + 2 * synthesis["adversarial"]["sources"] * synthesis["adversarial"]["steps"]
    )
    seconds = compact["neurons_per_job"] * images * stimulus_size**2 * compact["filters"] ** 2 * SYNTHESIS_SECONDS
    searched = min(synthesis["natural_search"], pool_size(compact))
    per_image = compact["image_size"] ** 2 * compact["filters"] ** 2
    seconds += searched * (POOL_IMAGE_SECONDS + compact["neurons_per_job"] * per_image * STUDENT_SECONDS / 3)
    # the pool is searched 1,024 images at a time: memory does not grow with it
    return {"mem_mb": 2000, "runtime": _runtime(seconds, synthesis["device"])}


def member_resources(ensemble: Mapping[str, Any], n_train_images: int, feature_side: int) -> dict[str, int]:
    """One ensemble member: epochs over the training sessions' images on cached features."""
    per_image = feature_side**2 * (ensemble["width"] ** 2 + ensemble["residual_blocks"] * ensemble["bottleneck"] ** 2)
    seconds = ensemble["epochs"] * n_train_images * per_image * MEMBER_SECONDS / 64
    return {"mem_mb": 8000, "runtime": _runtime(seconds, ensemble["device"])}


def feature_resources(features: Mapping[str, Any], n_images: int) -> dict[str, int]:
    """Backbone features of one image set."""
    scale = (features["input_size"] / 128) ** 2
    seconds = n_images * scale / FEATURE_IMAGES_PER_SECOND
    return {
        "mem_mb": int(4000 + n_images * features["input_size"] ** 2 * 3 * 4 / 1e6),
        "runtime": _runtime(seconds, features["device"]),
    }


def stimulus_size(config: Mapping[str, Any]) -> int:
    """The image size of the sessions' stimuli (the distillation pool's): the virtual lab's, or the recorded 112 px
    that ``active_learning.image_size`` names for real data."""
    if config["source"]["kind"] == "virtual_lab":
        return int(config["virtual_lab"]["image_size"])
    return int(config["active_learning"]["image_size"])


def teacher_resources(features: Mapping[str, Any], compact: Mapping[str, Any]) -> dict[str, int]:
    """One teacher_labels job: the backbone over every pool image (streamed, so memory does not grow with the pool),
    then the members and the mapping, about as much again."""
    extraction = feature_resources(features, pool_size(compact))
    return {"mem_mb": 6000, "runtime": 2 * extraction["runtime"]}
