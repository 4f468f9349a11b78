"""Mapping the ensemble to a held-out session's neurons, fitted on the first half of its images only."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compactcortex.config import settings_from
from compactcortex.ensemble.data import SessionData, ridge_on_first_half, zscore
from compactcortex.io.predictions import halves
from compactcortex.metrics import pearson_r
from compactcortex.models.ensemble import FactorisedReadout, Member, embed
from compactcortex.progress import Progress
from compactcortex.ridge import RidgeModel, kfold_indices
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MappingSettings:
    method: str  # factorised | ridge
    steps: int
    learning_rate: float
    penalties: tuple[float, ...]  # factorised: candidate penalties (L2 on mixing + L1 on spatial), chosen by CV
    ridge_alphas: tuple[float, ...]
    cv_folds: int
    seed: int

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any], seed: int) -> MappingSettings:
        return settings_from(cls, mapping, seed=seed)


def fit_factorised_readout(
    embedding: torch.Tensor, targets: torch.Tensor, settings: MappingSettings, name: str, penalty: float
) -> FactorisedReadout:
    """Full-batch Adam on the MSE between the readout of the embedding and the z-scored responses,
    plus `penalty` times (squared mixing weights + absolute spatial weights) per neuron."""
    torch.manual_seed(int(rng_for(settings.seed, "mapping", name).integers(2**62)))
    _, width, height, width_px = embedding.shape
    n_neurons = targets.shape[1]
    readout = FactorisedReadout(width, n_neurons, height, width_px)
    optimizer = torch.optim.Adam(readout.parameters(), lr=settings.learning_rate)
    for _ in range(settings.steps):
        loss = torch.mean((readout(embedding) - targets) ** 2)
        regulariser = (readout.mixing.weight.pow(2).sum() + readout.spatial.abs().sum()) / n_neurons
        optimizer.zero_grad(set_to_none=True)
        (loss + penalty * regulariser).backward()
        optimizer.step()
    return readout.eval()


def choose_penalty(embedding: torch.Tensor, targets: torch.Tensor, settings: MappingSettings, name: str) -> float:
    """The penalty with the best median (over neurons) cross-validated correlation, within the rows given."""
    if len(settings.penalties) == 1:
        return settings.penalties[0]
    folds = kfold_indices(embedding.shape[0], settings.cv_folds, settings.seed)
    scores = []
    for penalty in settings.penalties:
        predicted = torch.empty_like(targets)
        for fold, held_out in enumerate(folds):
            train = np.setdiff1d(np.arange(embedding.shape[0]), held_out)
            readout = fit_factorised_readout(embedding[train], targets[train], settings, f"{name}/fold{fold}", penalty)
            with torch.inference_mode():
                predicted[held_out] = readout(embedding[held_out])
        scores.append(np.nanmedian(pearson_r(predicted.numpy().T, targets.numpy().T)))
    return settings.penalties[int(np.nanargmax(scores))]


def map_members(
    members: Sequence[Member], session: SessionData, settings: MappingSettings, device: str
) -> tuple[np.ndarray, list[FactorisedReadout | RidgeModel]]:
    """Each member's prediction for every image of `session`, (member, neuron, image), in units of the
    responses z-scored with first-half statistics, and the fitted mappings.

    Only the first half of the images (and their responses) is used to fit anything.
    """
    fit, _ = halves(session.n_images)
    repeat_mean = session.repeat_mean()
    targets = zscore(repeat_mean[:, fit]).T.astype(np.float32)
    predictions, mappings = [], []
    progress = Progress(f"{session.session}: {settings.method} mapping", len(members), "member", logger=log)
    for index, member in enumerate(progress.iterate(members)):
        embedding = embed(member, session.features, device)
        if settings.method == "ridge":
            flat = embedding.flatten(1).numpy().astype(np.float64)
            prediction, model, _ = ridge_on_first_half(
                {"embedding": flat}, repeat_mean, settings.ridge_alphas, settings.cv_folds, settings.seed
            )
            predictions.append(prediction)
            mappings.append(model)
        else:
            name = f"{session.session}/member{index}"
            fit_targets = torch.from_numpy(targets)
            penalty = choose_penalty(embedding[fit], fit_targets, settings, name)
            readout = fit_factorised_readout(embedding[fit], fit_targets, settings, name, penalty)
            with torch.inference_mode():
                predictions.append(readout(embedding).numpy().T)
            mappings.append(readout)
    return np.stack(predictions).astype(np.float64), mappings
