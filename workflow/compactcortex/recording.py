"""A recording session in memory: spike times, trials and the images shown."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Recording:
    """What one session recorded, in the layout NWB stores it.

    spike_times holds every unit's spike times (seconds) concatenated, each unit's run sorted;
    unit_bounds (n_units + 1) are the offsets of each unit's run. Trials are stimulus presentations:
    onset and offset (seconds) and the index of the image shown (into `images`).
    """

    session: str
    monkey: str
    unit_ids: np.ndarray
    spike_times: np.ndarray
    unit_bounds: np.ndarray
    trial_onset: np.ndarray
    trial_offset: np.ndarray
    trial_image: np.ndarray
    images: np.ndarray
    image_ids: np.ndarray
    image_types: np.ndarray
    area: str = "V4"
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.unit_bounds.size - 1)

    @property
    def n_trials(self) -> int:
        return int(self.trial_onset.size)

    @property
    def n_spikes(self) -> int:
        return int(self.spike_times.size)


def concatenate_spike_trains(trains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit spike-time arrays -> (all times concatenated, the (n_units + 1) offsets of each unit's run)."""
    bounds = np.concatenate([[0], np.cumsum([train.size for train in trains])]).astype(np.int64)
    return np.concatenate(trains) if trains else np.empty(0), bounds
