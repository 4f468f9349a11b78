"""The run summary, ``results/<dataset>/summary.json``: the headline figures of a run as one JSON object."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compactcortex.atomic import write_text_atomic
from compactcortex.errors import InputDataError


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(summary, indent=2, sort_keys=False) + "\n")


def read_summary(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputDataError(path, "run summary not found (has the pipeline run?)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"cannot be read as a run summary: {exc}") from exc
    if not isinstance(summary, dict):
        raise InputDataError(path, "a run summary must be a JSON object")
    return summary
