"""A session's compression plan (the checkpoint's output, JSON): which neurons each compression job trains."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from compactcortex.atomic import write_text_atomic
from compactcortex.errors import InputDataError


def chunk_name(index: int) -> str:
    return f"chunk{index:03d}"


def plan_chunks(neuron_ids: Sequence[str], neurons_per_job: int) -> dict[str, list[str]]:
    """The neurons of a session in consecutive chunks of ``neurons_per_job`` (one Snakemake job each)."""
    if neurons_per_job < 1:
        raise ValueError(f"neurons_per_job must be at least 1, got {neurons_per_job}")
    ids = [str(n) for n in neuron_ids]
    return {
        chunk_name(i): ids[start : start + neurons_per_job]
        for i, start in enumerate(range(0, len(ids), neurons_per_job))
    }


def write_plan(path: str | Path, chunks: dict[str, list[str]], neurons_per_job: int) -> None:
    write_text_atomic(path, json.dumps({"neurons_per_job": neurons_per_job, "chunks": chunks}, indent=2) + "\n")


def read_plan(path: str | Path) -> dict[str, list[str]]:
    """Chunk name -> its neurons."""
    try:
        chunks = json.loads(Path(path).read_text())["chunks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputDataError(Path(path), f"cannot be read as a compression plan: {exc}") from exc
    if not isinstance(chunks, dict) or not all(isinstance(n, list) for n in chunks.values()):
        raise InputDataError(Path(path), "a compression plan's 'chunks' must map chunk names to lists of neurons")
    return chunks
