"""Spike counting: the vectorised counter agrees with the naive per-trial loop, edges included."""

from __future__ import annotations

import numpy as np

from compactcortex.spike_counts import count_spikes, count_spikes_per_trial_loop


def test_vectorised_counts_equal_the_per_trial_loop() -> None:
    rng = np.random.default_rng(3)
    per_unit = rng.poisson(400, size=9)
    per_unit[4] = 0  # a unit that never fired
    times = np.concatenate([np.sort(rng.uniform(0, 100, n)) for n in per_unit])
    bounds = np.concatenate([[0], np.cumsum(per_unit)])
    start = np.sort(rng.uniform(0, 99, 300))
    stop = start + rng.uniform(0.05, 0.3, 300)
    fast = count_spikes(times, bounds, start, stop)
    assert fast.shape == (9, 300)
    np.testing.assert_array_equal(fast, count_spikes_per_trial_loop(times, bounds, start, stop))
    assert fast[4].sum() == 0 and fast.sum() > 0


def test_window_is_closed_at_the_start_and_open_at_the_stop() -> None:
    times = np.array([1.0, 1.1, 1.2, 2.0])
    bounds = np.array([0, 4])
    counts = count_spikes(times, bounds, np.array([1.0, 1.1, 5.0]), np.array([1.2, 2.0, 6.0]))
    np.testing.assert_array_equal(counts, [[2, 2, 0]])


def test_unsorted_windows_and_overlapping_trials() -> None:
    times = np.arange(0, 10, 0.01)
    bounds = np.array([0, times.size])
    start = np.array([5.0, 1.0, 1.005])
    counts = count_spikes(times, bounds, start, start + 0.1)
    np.testing.assert_array_equal(counts, count_spikes_per_trial_loop(times, bounds, start, start + 0.1))
