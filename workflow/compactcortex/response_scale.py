"""Response units. Every model here predicts a neuron's repeat-mean response z-scored with the mean and standard
deviation (ddof=1) of the session's fit half (the first half of its images, index order): the ensemble's mappings
and the compact models learn that scale. A ``ResponseScale`` (those means and sds, saved with the mappings and on
each model card) turns predictions back into spike counts per counting window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from compactcortex.io.predictions import halves

Z_SCORED = "response z-scored with the fit half's mean and sd"


def mean_and_sd(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron (row) of ``reference`` (neuron, image): its mean and sd (ddof=1); an sd of 0 counts as 1, so a
    constant neuron's z-scores are 0, not NaN."""
    mean = reference.mean(axis=1)
    sd = reference.std(axis=1, ddof=1)
    return mean, np.where(sd > 0, sd, 1.0)


def counting_window_units(attrs: Mapping[str, Any]) -> str:
    """What a session dataset's responses count, from its attributes: 'spikes per 100 ms counting window'."""
    window = attrs.get("window_ms")
    return f"spikes per {float(window):g} ms counting window" if window is not None else "spikes per counting window"


@dataclass(frozen=True)
class ResponseScale:
    """The fit half's mean and sd of each neuron's repeat-mean response, in ``units``."""

    mean: np.ndarray  # (neuron,)
    sd: np.ndarray  # (neuron,)
    units: str

    @classmethod
    def of_fit_half(cls, responses: np.ndarray, units: str) -> ResponseScale:
        """From a session's responses (neuron, image, repeat), NaN where a repeat is missing."""
        fit, _ = halves(responses.shape[1])
        mean, sd = mean_and_sd(np.nanmean(responses[:, fit], axis=2))
        return cls(mean.astype(np.float64), sd.astype(np.float64), units)

    def to_responses(self, z_scored: np.ndarray) -> np.ndarray:
        """Predictions (image, neuron) in z-scored units -> ``units``."""
        return z_scored * self.sd + self.mean
