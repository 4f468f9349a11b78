"""Generated blocks of a Markdown file (the README's tables of results): the text between
``<!-- summary-table <dataset> -->`` and ``<!-- summary-table end -->`` is replaced, the rest kept byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

from compactcortex.atomic import write_text_atomic
from compactcortex.errors import InputDataError

END_MARKER = "<!-- summary-table end -->"


def start_marker(dataset: str) -> str:
    return f"<!-- summary-table {dataset} -->"


def replace_block(text: str, dataset: str, table: str, source: str | Path) -> str:
    """The text with its block for `dataset` replaced by `table`; a missing block is an error naming the file."""
    pattern = re.compile(re.escape(start_marker(dataset)) + r"\n.*?" + re.escape(END_MARKER), re.DOTALL)
    if not pattern.search(text):
        raise InputDataError(source, f"no block '{start_marker(dataset)}' ... '{END_MARKER}' to fill")
    return pattern.sub(lambda _: f"{start_marker(dataset)}\n{table}{END_MARKER}", text, count=1)


def fill_block(path: str | Path, dataset: str, table: str) -> None:
    """Replace the file's block for `dataset` with `table`, atomically."""
    path = Path(path)
    write_text_atomic(path, replace_block(path.read_text(), dataset, table, path))
