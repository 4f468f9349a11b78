"""Logging for Snakemake jobs: everything a job prints, its progress lines (``progress``) included, goes to its log
file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def logging_to(log_path: str | Path) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr to `log_path`; log any exception with its traceback."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as stream, contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield logging.getLogger("compactcortex")
        except Exception:
            logging.getLogger("compactcortex").exception("job failed")
            print(f"job failed; see {log_path}", file=sys.__stderr__)
            raise
        finally:
            root.removeHandler(handler)
            logging.captureWarnings(False)


def use_threads(threads: int) -> None:
    """Let torch use exactly the threads the scheduler gave the job."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
