"""Errors raised for bad input: each names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class InputDataError(ValueError):
    """Bad input data: a corrupt, truncated or inconsistent file, or bad values in it."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ConfigError(ValueError):
    """A configuration that does not follow the schema, or values that contradict each other."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = source
        self.problem = problem
        where = f"{source}: " if source is not None else ""
        super().__init__(f"{where}{problem}")
