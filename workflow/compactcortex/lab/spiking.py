"""Spiking of the virtual lab's neurons: trial schedule, latency, gain variability, Poisson spikes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compactcortex.recording import concatenate_spike_trains


@dataclass(frozen=True)
class TrialSchedule:
    """Stimulus presentations: onset and offset (seconds) and the index of the image shown."""

    onset: np.ndarray
    offset: np.ndarray
    image: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.offset.max(initial=0.0)) + 1.0


def schedule_trials(
    rng: np.random.Generator,
    n_images: int,
    repeats: int,
    *,
    stimulus_ms: float,
    interval_ms: float,
    aborted_fraction: float,
    start_s: float = 1.0,
) -> TrialSchedule:
    """Blocks of all images in shuffled order, one block per repeat; some trials aborted (broken fixation).

    Aborted trials keep their time slot but are not recorded, so images end up with different repeat
    counts, as in real sessions. Onsets jitter by a few ms so the timing is not perfectly regular.
    """
    order = np.concatenate([rng.permutation(n_images) for _ in range(repeats)])
    slot_s = (stimulus_ms + interval_ms) / 1000.0
    onset = start_s + np.arange(order.size) * slot_s + rng.uniform(0.0, 0.02, order.size)
    kept = rng.random(order.size) >= aborted_fraction
    return TrialSchedule(onset=onset[kept], offset=onset[kept] + stimulus_ms / 1000.0, image=order[kept])


def spike_trains(
    rng: np.random.Generator,
    rates: np.ndarray,
    spontaneous: np.ndarray,
    latency_s: np.ndarray,
    schedule: TrialSchedule,
    *,
    gain_cv: float,
    shared_gain_cv: float,
    resolution_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron spike times for a session.

    rates: (neuron, image) noiseless driven rates (spikes/s); spontaneous: (neuron,) rate outside the
    driven windows; latency_s: (neuron,) response latency. On each trial the driven rate is scaled by a
    gain shared by all neurons and a private gain, both gamma-distributed with mean 1 (overdispersion).
    Returns the spike times concatenated over neurons (each neuron's sorted) and the (n + 1) offsets.
    """
    n_neurons = rates.shape[0]
    stimulus_s = schedule.offset - schedule.onset
    shared = _gamma_gain(rng, shared_gain_cv, (1, schedule.onset.size))
    private = _gamma_gain(rng, gain_cv, (n_neurons, schedule.onset.size))
    driven_rate = rates[:, schedule.image] * shared * private
    trains = []
    for neuron in range(n_neurons):
        start = schedule.onset + latency_s[neuron]
        stop = start + stimulus_s
        background = np.sort(
            rng.uniform(0.0, schedule.duration_s, rng.poisson(spontaneous[neuron] * schedule.duration_s))
        )
        inside = np.searchsorted(start, background, side="right") - 1
        in_window = (inside >= 0) & (background < stop[np.maximum(inside, 0)])
        counts = rng.poisson(driven_rate[neuron] * stimulus_s)
        driven = np.repeat(start, counts) + rng.random(counts.sum()) * np.repeat(stimulus_s, counts)
        times = np.sort(np.concatenate([background[~in_window], driven]))
        trains.append(np.round(times / resolution_s) * resolution_s)
    return concatenate_spike_trains(trains)


def _gamma_gain(rng: np.random.Generator, cv: float, shape: tuple[int, ...]) -> np.ndarray:
    if cv <= 0:
        return np.ones(shape)
    shape_parameter = 1.0 / cv**2
    return rng.gamma(shape_parameter, 1.0 / shape_parameter, size=shape)
