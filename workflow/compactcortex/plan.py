"""What a configuration asks of a cluster, before anything runs: ``make plan CONFIG=...``.

For each rule: its number of jobs, what one job asks for (GPU or CPU, hours, memory: ``resources.py``, the same
numbers the rules request), the GPU-hours of all its jobs, and the disk its outputs take; then the totals, checked
against common cluster limits (at most ``MAX_JOB_HOURS`` of walltime and ``MAX_JOB_MEMORY_GB`` of memory a job, at
most ``MAX_DISK_GB`` for the whole run). Neuron and image counts come from the config (the virtual lab) or from the
data's file headers (the published data of Cowley et al. 2023); an NWB source is counted at preprocessing, so its
plan uses the config's guess.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compactcortex.config import load_config, session_roles
from compactcortex.io.cowley2023 import published_models, response_shape
from compactcortex.resources import (
    UNKNOWN_SESSION_IMAGES,
    compression_resources,
    feature_resources,
    member_resources,
    pool_size,
    stimulus_size,
    synthesis_resources,
    teacher_resources,
)

MAX_JOB_HOURS = 24
MAX_JOB_MEMORY_GB = 64
MAX_DISK_GB = 100
UNKNOWN_SESSION_NEURONS = 100
BYTES_PER_FEATURE = 2  # the feature cache is float16
FEATURE_CHANNELS = 80  # EfficientNet-Lite0's blocks.5, the default layer (stride 8)


@dataclass(frozen=True)
class Row:
    rule: str
    jobs: int
    gpu: bool
    hours: float  # one job's runtime request
    mem_gb: float  # one job's memory request
    disk_gb: float  # all its jobs' outputs

    @property
    def gpu_hours(self) -> float:
        return self.jobs * self.hours if self.gpu else 0.0


def session_sizes(config: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """(neurons, images) per session."""
    roles = session_roles(config)
    source = config["source"]
    if source["kind"] == "virtual_lab":
        designs = config["virtual_lab"]["roles"]
        return {s: (designs[r]["n_neurons"], sum(designs[r]["images"].values())) for s, r in roles.items()}
    if source["kind"] == "cowley2023":
        return {session: response_shape(source["path"], session) for session in roles}
    return {session: (UNKNOWN_SESSION_NEURONS, UNKNOWN_SESSION_IMAGES) for session in roles}


def compact_sessions(config: Mapping[str, Any]) -> list[str]:
    roles = session_roles(config)
    return list(config["compact"]["sessions"] or [s for s, role in roles.items() if role == "test"])


def plan_rows(config: Mapping[str, Any]) -> list[Row]:
    """One row per rule that does real work (the cheap bookkeeping rules are left out)."""
    roles = session_roles(config)
    sizes = session_sizes(config)
    tests = [s for s, role in roles.items() if role == "test"]
    compact, features = config["compact"], config["features"]
    pool = pool_size(compact)
    size = stimulus_size(config)
    feature_side = math.ceil(features["input_size"] / 8)
    per_feature_image = FEATURE_CHANNELS * feature_side**2 * BYTES_PER_FEATURE
    compressed = compact_sessions(config)
    chunks = sum(math.ceil(sizes[s][0] / compact["neurons_per_job"]) for s in compressed)
    train_images = sum(sizes[s][1] for s, role in roles.items() if role == "train")
    if config["ensemble"]["test_fit_halves"]:
        train_images += sum(sizes[s][1] // 2 for s in tests)
    member = member_resources(config["ensemble"], train_images, feature_side)
    compression = compression_resources(compact, size)
    synthesis = synthesis_resources(config["synthesis"], compact, size)
    session_images = sum(images for _, images in sizes.values())
    gb = 1e9

    def job(resources: Mapping[str, int]) -> tuple[float, float]:
        return resources["runtime"] / 60, resources["mem_mb"] / 1000

    preprocess = {"virtual_lab": "simulate_session + preprocess_session", "cowley2023": "ingest_cowley_session"}
    rows = [
        Row(
            preprocess.get(config["source"]["kind"], "preprocess_session"),
            len(sizes),
            False,
            0.5,
            4.0,
            session_images * size**2 * 3 / gb,
        ),
        Row(
            "extract_features (sessions)",
            len(sizes),
            features["device"] == "cuda",
            *job(feature_resources(features, max(images for _, images in sizes.values()))),
            session_images * per_feature_image / gb,
        ),
        Row("train_member", config["ensemble"]["members"], config["ensemble"]["device"] == "cuda", *job(member), 0.1),
        Row("map_session", len(tests), config["ensemble"]["device"] == "cuda", 1.0, 6.0, 0.01),
        Row(
            "teacher_labels (streamed)",
            len(compressed),
            config["ensemble"]["device"] == "cuda",
            *job(teacher_resources(features, compact)),
            sum(sizes[s][0] for s in compressed) * pool * 4 / gb,
        ),
        Row("compress_neurons (pool read by index)", chunks, compact["device"] == "cuda", *job(compression), 0.01),
        Row("synthesize_images", chunks, config["synthesis"]["device"] == "cuda", *job(synthesis), 0.01),
    ]
    if config["source"]["kind"] == "cowley2023":
        have = {session for session, _ in published_models(config["source"]["path"])}
        rows.append(Row("published_compact_predictions", len(set(tests) & have), False, 0.5, 4.0, 0.01))
    return rows


def limits_exceeded(rows: list[Row]) -> list[str]:
    problems = [
        f"{row.rule}: {row.hours:.1f} h a job (limit {MAX_JOB_HOURS} h)" for row in rows if row.hours > MAX_JOB_HOURS
    ]
    problems += [
        f"{row.rule}: {row.mem_gb:.0f} GB a job (limit {MAX_JOB_MEMORY_GB} GB)"
        for row in rows
        if row.mem_gb > MAX_JOB_MEMORY_GB
    ]
    disk = sum(row.disk_gb for row in rows)
    if disk > MAX_DISK_GB:
        biggest = max(rows, key=lambda row: row.disk_gb)
        problems.append(f"the run's disk: {disk:,.0f} GB (limit {MAX_DISK_GB} GB; most: {biggest.rule})")
    return problems


def format_plan(rows: list[Row]) -> str:
    lines = [f"{'rule':<40} {'jobs':>6} {'on':>4} {'h/job':>7} {'GB/job':>7} {'GPU-h':>9} {'disk GB':>10}"]
    for row in rows:
        lines.append(
            f"{row.rule:<40} {row.jobs:>6} {'GPU' if row.gpu else 'CPU':>4} {row.hours:>7.1f} {row.mem_gb:>7.1f} "
            f"{row.gpu_hours:>9.1f} {row.disk_gb:>10.1f}"
        )
    lines.append(
        f"{'total':<40} {sum(r.jobs for r in rows):>6} {'':>4} {'':>7} {'':>7} "
        f"{sum(r.gpu_hours for r in rows):>9.1f} {sum(r.disk_gb for r in rows):>10.1f}"
    )
    problems = limits_exceeded(rows)
    lines.append(
        "fits the limits" if not problems else "EXCEEDS the limits:\n" + "\n".join(f"  - {p}" for p in problems)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a configuration file (config.yaml, config/paper.yaml, ...)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config["source"].get("path") and not Path(config["source"]["path"]).is_absolute():
        config["source"]["path"] = str(Path(__file__).resolve().parents[2] / config["source"]["path"])
    print(f"{args.config}: {config['dataset']}")
    print(format_plan(plan_rows(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
