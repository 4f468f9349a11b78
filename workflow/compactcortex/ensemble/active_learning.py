"""Active learning (the paper's adaptive sessions): the candidate images the members disagree on most."""

from __future__ import annotations

import numpy as np


def disagreement(predictions: np.ndarray) -> np.ndarray:
    """Per image of (member, neuron, image) predictions: the members' variance, averaged over neurons (each neuron's
    predictions z-scored first, so that no neuron dominates by its scale)."""
    mean = predictions.mean(axis=(0, 2), keepdims=True)
    std = predictions.std(axis=(0, 2), keepdims=True)
    standardised = (predictions - mean) / np.where(std > 0, std, 1.0)
    return standardised.var(axis=0).mean(axis=0)
