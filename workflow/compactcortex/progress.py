"""Progress lines in a job's log: every long loop of the pipeline reports how far it has got, at a steady interval.

A ``Progress`` counts the units of one loop (steps, images, students, ...) and logs a line, through ``logging`` (so
into the rule's log file, ``rule_logging``), at the first update, then whenever ``INTERVAL_SECONDS`` have passed
since its last line, and at the last unit::

    distill: step 1200/4000 (30%), 41.2 steps/s, loss 0.0123, 1:08 left
    distill: step 4000/4000 (100%), 40.9 steps/s, loss 0.0101, done in 1:38

The rate is that of the window since the previous line (units/s, or s/unit below one a second), the time left the
units still to do at that rate. What a loop adds (a loss, an objective) is passed as text or as a function that
makes it, called only when a line is due: nothing is computed, nor synchronised with a GPU, between lines. Between
lines an update costs a clock reading (``time.monotonic``, tens of nanoseconds) and a comparison. A progress line
never changes what the loop computes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

# Seconds between two progress lines of a loop: the one place to change it (a paper-scale job is then never silent
# for more than a unit of its loops plus this).
INTERVAL_SECONDS = 30.0

T = TypeVar("T")
Details = str | Callable[[], str] | None

_log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``1:08``, ``12:00``, ``3:02:11``: whole seconds, hours only when there are any."""
    whole = round(seconds) if math.isfinite(seconds) else 0
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def rate_text(rate: float, unit: str) -> str:
    """``41.2 steps/s``, or ``2.5 s/student`` below one unit a second."""
    return f"{rate:.1f} {plural(unit)}/s" if rate >= 1 else f"{1 / rate:.1f} s/{unit}"


class Progress:
    """A loop's progress (see the module docstring): ``update(done)`` after each unit (or batch of units);
    ``iterate`` wraps an iterable. ``interval`` (default ``INTERVAL_SECONDS``, read when the progress is made) and
    ``clock`` can be set for tests; ``start`` is the units already done (a resumed job)."""

    def __init__(
        self,
        name: str,
        total: int | None,
        unit: str = "step",
        *,
        logger: logging.Logger | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: int = 0,
    ) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.logger = logger or _log
        self.interval = INTERVAL_SECONDS if interval is None else float(interval)
        self.clock = clock
        self.started = self.last_time = clock()
        self.done = self.last_done = start
        self.lines = 0

    def due(self, done: int) -> bool:
        """Whether ``update(done)`` logs: the first update, the last unit, or the interval has passed."""
        if self.lines == 0 or (self.total is not None and done >= self.total):
            return True
        return self.clock() - self.last_time >= self.interval

    def update(self, done: int, details: Details = None) -> bool:
        """``done`` units are done; log a line if one is due (``details``, or what it returns, in it). Returns
        whether a line was logged (the caller may then start a new window of what it reports)."""
        self.done = done
        if not self.due(done):
            return False
        self.report(details)
        return True

    def advance(self, n: int = 1, details: Details = None) -> bool:
        """``n`` more units are done (``update``)."""
        return self.update(self.done + n, details)

    def iterate(self, iterable: Iterable[T], details: Details = None) -> Iterator[T]:
        """The items of ``iterable``, one unit each, counted as done when the loop's body has run."""
        for item in iterable:
            yield item
            self.advance(1, details)

    def report(self, details: Details = None) -> str:
        """Log the line for where the loop stands now (due or not) and start a new window; returns the line."""
        now = self.clock()
        done, total = self.done, self.total
        head = f"{self.name}: {self.unit} {done}"
        if total:
            head += f"/{total} ({math.floor(100 * done / total)}%)"
        parts = [head]
        seconds, units = now - self.last_time, done - self.last_done
        rate = units / seconds if seconds > 0 and units > 0 else None
        if rate is not None:
            parts.append(rate_text(rate, self.unit))
        text = details() if callable(details) else details
        if text:
            parts.append(text)
        if total is not None and done >= total:
            parts.append(f"done in {duration(now - self.started)}")
        elif total is not None and rate is not None:
            parts.append(f"{duration((total - done) / rate)} left")
        line = ", ".join(parts)
        self.logger.info("%s", line)
        self.last_time, self.last_done = now, done
        self.lines += 1
        return line
