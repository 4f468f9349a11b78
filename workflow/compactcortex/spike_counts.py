"""Spike counting in trial windows, vectorised over trials."""

from __future__ import annotations

import numpy as np


def count_spikes(
    spike_times: np.ndarray, unit_bounds: np.ndarray, window_start: np.ndarray, window_stop: np.ndarray
) -> np.ndarray:
    """Count each unit's spikes in each trial's window [start, stop).

    spike_times: all units' spike times concatenated (seconds), each unit's run sorted ascending
    (NWB's ragged Units.spike_times). unit_bounds: (n_units + 1,) offsets into spike_times, i.e. NWB's
    VectorIndex with a leading 0. window_start, window_stop: (n_trials,) seconds.
    Returns (n_units, n_trials) int64 counts: two binary searches per unit over all trials at once,
    exact (no shifting of times that could round a spike across a window edge).
    """
    spike_times = np.asarray(spike_times, dtype=np.float64)
    unit_bounds = np.asarray(unit_bounds, dtype=np.int64)
    edges = np.stack([np.asarray(window_start, np.float64), np.asarray(window_stop, np.float64)])
    counts = np.empty((unit_bounds.size - 1, edges.shape[1]), dtype=np.int64)
    for unit, (first, last) in enumerate(zip(unit_bounds[:-1], unit_bounds[1:], strict=True)):
        start_index, stop_index = np.searchsorted(spike_times[first:last], edges, side="left")
        counts[unit] = stop_index - start_index
    return counts


def count_spikes_per_trial_loop(
    spike_times: np.ndarray, unit_bounds: np.ndarray, window_start: np.ndarray, window_stop: np.ndarray
) -> np.ndarray:
    """The naive reference: a Python loop over units and trials. For tests and `make bench` only."""
    n_units = len(unit_bounds) - 1
    counts = np.zeros((n_units, len(window_start)), dtype=np.int64)
    for unit in range(n_units):
        times = spike_times[unit_bounds[unit] : unit_bounds[unit + 1]]
        for trial, (start, stop) in enumerate(zip(window_start, window_stop, strict=True)):
            counts[unit, trial] = np.count_nonzero((times >= start) & (times < stop))
    return counts
