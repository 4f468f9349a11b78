"""The teacher: the ensemble's members, each through a session's fitted mapping (``io.members``), predicting that
session's neurons from an image set's cached backbone features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from compactcortex.io.members import load_member, load_readouts
from compactcortex.models.ensemble import embed


def member_predictions(
    member_paths: Sequence[str], readout_paths: Sequence[str], features: torch.Tensor, device: str
) -> np.ndarray:
    """(member, neuron, image): each member's prediction for the neurons of every session in ``readout_paths``
    (their neurons one after the other). The teacher's label is their mean over members."""
    readouts = [load_readouts(path) for path in readout_paths]
    predictions = []
    for index, path in enumerate(member_paths):
        embedding = embed(load_member(path, device), features, device)
        with torch.inference_mode():
            predictions.append(np.concatenate([session[index](embedding) for session in readouts], axis=0))
    return np.stack(predictions)
