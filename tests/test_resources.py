"""Cluster resources grow with the config's sizes, so a paper-scale config asks for paper-scale jobs."""

from __future__ import annotations

from compactcortex.config import DEFAULT_CONFIG_PATH, load_config
from compactcortex.resources import (
    MIN_RUNTIME,
    WORKER_MB,
    compression_resources,
    feature_resources,
    for_attempt,
    member_resources,
    synthesis_resources,
)

CONFIG = load_config(DEFAULT_CONFIG_PATH)


def bigger(section: dict, **changes) -> dict:
    return {**section, **changes}


def test_compression_runtime_and_memory_scale_with_the_work() -> None:
    compact = CONFIG["compact"]
    base = compression_resources(compact, 64)
    long = compression_resources(bigger(compact, steps=20 * compact["steps"]), 64)
    wide = compression_resources(bigger(compact, filters=100, image_size=112), 64)
    assert base["runtime"] >= MIN_RUNTIME and long["runtime"] > 10 * base["runtime"] / 2
    assert wide["runtime"] > long["runtime"] and wide["mem_mb"] > base["mem_mb"]
    # the students' time doubles with the neurons, the pool's regeneration (shared by a job's students) does not
    five, ten = (
        compression_resources(bigger(compact, steps=20 * compact["steps"], neurons_per_job=n), 64)["runtime"]
        for n in (5, 10)
    )
    assert 1.5 * five < ten < 2 * five
    on_gpu = compression_resources(bigger(compact, steps=20 * compact["steps"], device="cuda"), 64)
    assert on_gpu["runtime"] < long["runtime"]
    # the pool is read by index: its size does not reach a job's memory; the image cache and loaders do
    pool = dict(compact["pool"], images={"natural": 1_000_000})
    assert compression_resources(bigger(compact, pool=pool), 64)["mem_mb"] == base["mem_mb"]
    cached = compression_resources(bigger(compact, image_cache_mb=compact["image_cache_mb"] + 4000), 64)
    assert cached["mem_mb"] == base["mem_mb"] + 4000
    loaders = compression_resources(bigger(compact, device="cuda", threads=8), 64)
    assert loaders["mem_mb"] == base["mem_mb"] + 7 * WORKER_MB
    assert compression_resources(bigger(compact, threads=8), 64)["mem_mb"] == base["mem_mb"]  # no loaders on a CPU


def test_synthesis_member_and_feature_resources_scale() -> None:
    synthesis, compact = CONFIG["synthesis"], CONFIG["compact"]
    base = synthesis_resources(synthesis, compact, 64)
    paper = synthesis_resources(bigger(synthesis, steps=1000, starts=10), bigger(compact, filters=100), 112)
    assert paper["runtime"] > base["runtime"]
    searched = synthesis_resources(
        bigger(synthesis, natural_search=10**6),
        bigger(compact, pool={**compact["pool"], "images": {"natural": 10**6}}),
        64,
    )
    assert searched["runtime"] > base["runtime"] and searched["mem_mb"] == base["mem_mb"]  # streamed
    ensemble = CONFIG["ensemble"]
    small = member_resources(ensemble, 2500, 16)
    wide = member_resources(bigger(ensemble, width=512, bottleneck=256, residual_blocks=4, epochs=60), 50_000, 14)
    assert wide["runtime"] > 10 * small["runtime"]
    assert (
        feature_resources(CONFIG["features"], 1_000_000)["runtime"]
        > feature_resources(CONFIG["features"], 1000)["runtime"]
    )


def test_a_retried_job_asks_for_more() -> None:
    assert [for_attempt(3000, attempt) for attempt in (1, 2, 3)] == [3000, 6000, 12000]
    assert for_attempt(10, 0) == 10  # never less than the first request
