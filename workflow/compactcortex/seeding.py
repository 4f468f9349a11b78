"""Every random choice comes from the config's seed plus the names of what is being made."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator for `names` (e.g. the session and the step), independent of every other name."""
    keys = [zlib.crc32(name.encode()) for name in names]
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=keys))
