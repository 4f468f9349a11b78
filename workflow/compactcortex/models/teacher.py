"""The teacher: the ensemble's members, each through a session's fitted mapping (``io.members``), predicting that
session's neurons from an image set's backbone features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from compactcortex.io.members import load_member, load_readouts
from compactcortex.models.ensemble import EMBED_BATCH, embed


class Teacher:
    """The members and the sessions' mappings, loaded once (a streaming job calls it batch after batch)."""

    def __init__(self, member_paths: Sequence[str], readout_paths: Sequence[str], device: str) -> None:
        self.members = [load_member(path, device) for path in member_paths]
        self.readouts = [load_readouts(path) for path in readout_paths]
        self.device = device

    def __call__(self, features: torch.Tensor) -> np.ndarray:
        """(member, neuron, image): each member's prediction for the neurons of every session in the readouts
        (their neurons one after the other). The teacher's label is their mean over members.

        Features are embedded and read out ``EMBED_BATCH`` images at a time, whatever their number: a stream of
        batches (multiples of ``EMBED_BATCH``) goes through the same computations as all the images at once, so
        its labels are the same by construction, not by luck of the CPU's vector path."""
        chunks = []
        for start in range(0, features.shape[0], EMBED_BATCH):
            chunk = features[start : start + EMBED_BATCH]
            predictions = []
            for index, member in enumerate(self.members):
                embedding = embed(member, chunk, self.device)
                with torch.inference_mode():
                    predictions.append(np.concatenate([session[index](embedding) for session in self.readouts], axis=0))
            chunks.append(np.stack(predictions))
        return np.concatenate(chunks, axis=2)


def member_predictions(
    member_paths: Sequence[str], readout_paths: Sequence[str], features: torch.Tensor, device: str
) -> np.ndarray:
    """(member, neuron, image) for one set of features (see ``Teacher``)."""
    return Teacher(member_paths, readout_paths, device)(features)
