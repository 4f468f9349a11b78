"""Result tables (CSV; TSV for timings): one row per neuron or session. Written atomically; read with a clear error
naming the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError


def write_table(path: str | Path, table: pd.DataFrame, float_format: str | None = "%.6g", sep: str = ",") -> None:
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False, float_format=float_format, sep=sep)


def read_table(path: str | Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A table, checked for ``columns``."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise InputDataError(path, "table not found") from exc
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise InputDataError(path, f"cannot be read as a table: {exc}") from exc
    missing = [column for column in columns if column not in table]
    if missing:
        raise InputDataError(path, f"lacks the column(s) {', '.join(missing)}")
    return table


def read_tables(paths: Sequence[str | Path], columns: Sequence[str] = ()) -> pd.DataFrame:
    """Several tables of the same kind, one after the other."""
    return pd.concat([read_table(path, columns) for path in paths], ignore_index=True)


def _responses_frame(images: Sequence[str], neurons: Sequence[str], responses: np.ndarray) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({"image": list(images)}), pd.DataFrame(np.asarray(responses), columns=list(neurons))], axis=1
    )


def responses_table_text(images: Sequence[str], neurons: Sequence[str], responses: np.ndarray, units: str) -> str:
    """Predicted responses as CSV text: a ``# responses in <units>`` line, then one row per image, one column per
    neuron (read it back with ``pandas.read_csv(path, comment="#")``)."""
    return f"# responses in {units}\n" + _responses_frame(images, neurons, responses).to_csv(
        index=False, float_format="%.6g"
    )


def write_responses_table(
    path: str | Path, images: Sequence[str], neurons: Sequence[str], responses: np.ndarray, units: str
) -> None:
    """``responses_table_text`` into a file, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(responses_table_text(images, neurons, responses, units))
