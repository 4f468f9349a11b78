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

    `area` is where the writer says all units are (the virtual lab simulates V4); a recording read from a
    file has `unit_areas` instead, each unit's area as the file states it ("unknown" where it does not).
    `trial_ids` are the file's trial ids (for messages; by default the trials' positions). `read_attrs` and
    `warnings` are what reading the file decided and found (image order, trials excluded, ...), for the
    session dataset's attributes: JSON-ready values, without paths.
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
    area: str = "unknown"
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    unit_areas: np.ndarray | None = None
    trial_ids: np.ndarray | None = None
    read_attrs: dict[str, str | int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def areas_of_units(self) -> np.ndarray:
        """Each unit's brain area."""
        if self.unit_areas is not None:
            return np.asarray(self.unit_areas).astype(str)
        return np.full(self.n_units, self.area)

    def trial_label(self, trial: int) -> str:
        """How messages name trial `trial` (a position): by the file's id and its onset."""
        trial_id = trial if self.trial_ids is None else self.trial_ids[trial]
        return f"trial {trial_id} (onset {self.trial_onset[trial]:.4f} s)"

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
