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


def _runtime(seconds: float, device: str) -> int:
    if device == "cuda":
        seconds /= GPU_SPEEDUP
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


def compression_resources(compact: Mapping[str, Any], stimulus_size: int) -> dict[str, int]:
    """One compress_neurons job: neurons_per_job students, each trained steps + retrain_steps steps."""
    per_image = compact["image_size"] ** 2 * compact["filters"] ** 2
    steps = compact["steps"] + compact["retrain_steps"]
    seconds = compact["neurons_per_job"] * steps * compact["batch_size"] * per_image * STUDENT_SECONDS
    # the pool (uint8 at the stimulus size) and its preprocessed float32 copy at the students' size
    pool_mb = pool_size(compact) * 3 * (stimulus_size**2 + 4 * compact["image_size"] ** 2) / 1e6
    return {"mem_mb": int(2000 + 2 * pool_mb), "runtime": _runtime(seconds, compact["device"])}


def synthesis_resources(synthesis: Mapping[str, Any], compact: Mapping[str, Any], stimulus_size: int) -> dict[str, int]:
    """One synthesize_images job: 2 x starts images per neuron, and the adversarial images, per chunk."""
    images = (
        2 * synthesis["starts"] * synthesis["steps"]
        + 2 * synthesis["adversarial"]["sources"] * synthesis["adversarial"]["steps"]
    )
    seconds = compact["neurons_per_job"] * images * stimulus_size**2 * compact["filters"] ** 2 * SYNTHESIS_SECONDS
    pool_mb = pool_size(compact) * 3 * stimulus_size**2 / 1e6
    return {"mem_mb": int(2000 + 2 * pool_mb), "runtime": _runtime(seconds, synthesis["device"])}


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
