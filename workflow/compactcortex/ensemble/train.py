"""Training one ensemble member across sessions, with early stopping and a checkpoint per epoch."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compactcortex import metrics
from compactcortex.config import settings_from
from compactcortex.ensemble.data import SessionData, ridge_on_first_half, zscore
from compactcortex.io.members import read_training_checkpoint, write_training_checkpoint
from compactcortex.io.predictions import halves
from compactcortex.models.ensemble import CoreShape, Member, autocast_for, embed, embedding_size, to_device
from compactcortex.progress import Progress
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)

VALIDATION_ALPHAS = (1e-1, 1e1, 1e3, 1e5)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    optimizer: str  # sgd | adam
    learning_rate: float
    momentum: float
    weight_decay: float
    lr_decay: float  # multiplies the learning rate after each epoch
    patience: int  # epochs without a better validation score before stopping
    device: str
    seed: int

    @classmethod
    def from_config(cls, ensemble: Mapping[str, Any], seed: int) -> TrainSettings:
        return settings_from(cls, ensemble, seed=seed)


def make_member(shape: CoreShape, sessions: Sequence[SessionData], member: int, seed: int) -> Member:
    """A freshly initialised member, seeded by (seed, member)."""
    torch.manual_seed(int(rng_for(seed, "ensemble", f"member{member}", "init").integers(2**62)))
    feature_hw = tuple(sessions[0].features.shape[2:])
    return Member(shape, {s.session: s.n_neurons for s in sessions}, embedding_size(feature_hw))


def _batches(
    sessions: Sequence[SessionData], batch_size: int, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """All (session, image batch) pairs of an epoch, sessions interleaved in shuffled order."""
    batches = []
    for index, session in enumerate(sessions):
        order = rng.permutation(session.n_images)
        batches += [(index, order[start : start + batch_size]) for start in range(0, order.size, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _optimizer(member: Member, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            member.parameters(),
            lr=settings.learning_rate,
            momentum=settings.momentum,
            nesterov=settings.momentum > 0,
            weight_decay=settings.weight_decay,
        )
    return torch.optim.AdamW(member.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)


def validation_score(member: Member, validation: SessionData, device: str, seed: int) -> float:
    """Median held-out accuracy on the validation session: a ridge mapping from the embedding, fitted on
    the first half of its images; r2_ER on the second half (Pearson r where only repeat means exist)."""
    embedding = embed(member, validation.features, device).flatten(1).numpy().astype(np.float64)
    _, held_out = halves(validation.n_images)
    prediction, _, _ = ridge_on_first_half(
        {"embedding": embedding}, validation.repeat_mean(), VALIDATION_ALPHAS, 3, seed
    )
    prediction = prediction[:, held_out]
    single_trial = validation.response_kind == "single_trial"
    accuracy = metrics.prediction_accuracy(prediction, validation.responses[:, held_out], single_trial)
    return metrics.median_ignoring_nan(accuracy["r2_er" if single_trial else "r"])


def fit_member(
    member_index: int,
    train_sessions: Sequence[SessionData],
    validation: SessionData,
    shape: CoreShape,
    settings: TrainSettings,
    checkpoint_path: str | Path,
) -> dict[str, Any]:
    """Train one member; resume from `checkpoint_path` if an earlier run of the same job was killed.

    Returns the best member's state (by validation score), its score, the epoch and the history.
    Every random choice derives from (seed, member, epoch), so a resumed run gives the same result.
    """
    checkpoint_path = Path(checkpoint_path)
    member = make_member(shape, train_sessions, member_index, settings.seed).to(settings.device)
    if settings.device.startswith("cuda"):
        member = member.to(memory_format=torch.channels_last)
    optimizer = _optimizer(member, settings)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=settings.lr_decay)
    targets = [torch.from_numpy(zscore(s.repeat_mean()).T.astype(np.float32)) for s in train_sessions]
    identity = {"settings": asdict(settings), "shape": shape.as_dict(), "sessions": [s.session for s in train_sessions]}
    state = _fresh_state()
    if checkpoint_path.exists():
        state = _resume(checkpoint_path, member, optimizer, scheduler, identity)
    loss_function = nn.MSELoss()
    # every epoch has the same batches: the run's progress in batches (an upper bound where it stops early)
    per_epoch = sum(-(-s.n_images // settings.batch_size) for s in train_sessions)
    progress = Progress(
        f"member {member_index} training",
        settings.epochs * per_epoch,
        "batch",
        logger=log,
        start=state["epoch"] * per_epoch,
    )
    window: list[float] = []  # the epoch's batches' losses since its start or the last progress line
    for epoch in range(state["epoch"], settings.epochs):
        if epoch - 1 - state["best_epoch"] >= settings.patience and state["best_state"] is not None:
            log.info("member %d: no better validation score for %d epochs; stopping", member_index, settings.patience)
            break
        member.train()
        rng = rng_for(settings.seed, "ensemble", f"member{member_index}", f"epoch{epoch}")
        torch.manual_seed(int(rng.integers(2**62)))
        losses = []
        window.clear()
        for session_index, batch in _batches(train_sessions, settings.batch_size, rng):
            session = train_sessions[session_index]
            features = to_device(session.features[batch], settings.device)
            target = targets[session_index][batch].to(settings.device)
            with autocast_for(settings.device):
                prediction = member(features, session.session)
            loss = loss_function(prediction.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            window.append(losses[-1])
            if progress.advance(1, lambda e=epoch: f"epoch {e}, train MSE {np.mean(window):.4f}"):
                window.clear()
        scheduler.step()
        score = validation_score(member, validation, settings.device, settings.seed)
        state["history"].append({"epoch": epoch, "train_loss": float(np.mean(losses)), "validation_score": score})
        log.info(
            "member %d epoch %d: train MSE %.4f, validation median %.4f", member_index, epoch, np.mean(losses), score
        )
        if score > state["best_score"]:
            state.update(best_score=score, best_epoch=epoch, best_state=copy.deepcopy(_cpu_state(member)))
        state["epoch"] = epoch + 1
        _save_checkpoint(checkpoint_path, member, optimizer, scheduler, state, identity)
    return {
        "state_dict": state["best_state"],
        "validation_score": state["best_score"],
        "best_epoch": state["best_epoch"],
        "history": state["history"],
    }


def _cpu_state(member: Member) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in member.state_dict().items()}


def _fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "best_state": None, "history": []}


def _save_checkpoint(path: Path, member, optimizer, scheduler, state: dict, identity: dict) -> None:  # noqa: ANN001
    write_training_checkpoint(
        path,
        {
            "member": _cpu_state(member),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": state,
            "identity": identity,
        },
    )


def _resume(path: Path, member, optimizer, scheduler, identity: dict) -> dict:  # noqa: ANN001
    saved = read_training_checkpoint(path)
    if saved is None:
        return _fresh_state()
    if saved.get("identity") != identity:
        log.warning("%s: checkpoint was made with other settings or sessions; training from the start", path)
        return _fresh_state()
    member.load_state_dict(saved["member"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    log.info("%s: resuming after epoch %d", path, saved["state"]["epoch"])
    return saved["state"]
