"""The ensemble: architecture, training with early stopping and resume, and the held-out mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compactcortex import metrics
from compactcortex.ensemble import train as train_module
from compactcortex.ensemble.data import SessionData, halves
from compactcortex.ensemble.mapping import MappingSettings, map_members
from compactcortex.ensemble.model import CoreShape, EnsembleCore, Member, count_parameters, embedding_size
from compactcortex.ensemble.train import TrainSettings, make_member, train_member

SETTINGS = TrainSettings(
    epochs=6, batch_size=16, optimizer="adam", learning_rate=1e-2, momentum=0.9, weight_decay=0.0,
    lr_decay=0.9, patience=10, device="cpu", seed=3,
)  # fmt: skip
SHAPE = CoreShape(in_channels=8, width=16, bottleneck=8, residual_blocks=1)
MAPPING = MappingSettings(
    method="factorised",
    steps=300,
    learning_rate=0.02,
    penalties=(0.003, 0.03, 0.1),
    ridge_alphas=(1.0, 100.0),
    cv_folds=3,
    seed=0,
)


def test_paper_architecture_shapes() -> None:
    shape = CoreShape(in_channels=1024, width=512, bottleneck=256, residual_blocks=4)
    core = EnsembleCore(shape).eval()
    assert core(torch.zeros(2, 1024, 14, 14)).shape == (2, 512, 7, 7)
    assert embedding_size((14, 14)) == (7, 7)
    # 1.34M for the core as METHODS.md describes it; the paper counts ~2.26M a member with its readouts
    assert 1.2e6 < count_parameters(core) < 2.3e6
    member = Member(shape, {"a": 30, "b": 12}, (7, 7))
    assert member(torch.zeros(3, 1024, 14, 14), "b").shape == (3, 12)


def _synthetic_sessions(seed: int = 0) -> tuple[list[SessionData], SessionData, dict[str, np.ndarray]]:
    """Sessions whose neurons pool squared (rectified) feature channels over a Gaussian receptive field:
    one nonlinearity shared by all neurons, which the core can learn and the readouts reuse."""
    rng = np.random.default_rng(seed)
    grid = np.arange(6)

    def session(name: str, n_images: int, n_neurons: int, repeats: int) -> SessionData:
        features = torch.from_numpy(rng.normal(size=(n_images, 8, 6, 6)).astype(np.float32))
        centre = rng.uniform(1, 4, size=(n_neurons, 2))
        field = np.exp(
            -(
                (grid[None, :, None] - centre[:, 0, None, None]) ** 2
                + (grid[None, None, :] - centre[:, 1, None, None]) ** 2
            )
            / 2.0
        )
        channels = rng.random((n_neurons, 8)) < 0.3
        channels[:, 0] = True
        drive = np.einsum("icyx,nc,nyx->ni", np.maximum(features.numpy(), 0) ** 2, channels, field)
        truth = 4.0 * drive / drive.mean(axis=1, keepdims=True)
        responses = rng.poisson(np.repeat(truth[:, :, None], repeats, axis=2)).astype(float)
        data = SessionData(
            name,
            features.half(),
            responses,
            np.array([f"{name}_n{i}" for i in range(n_neurons)]),
            np.array([f"{name}_i{i}" for i in range(n_images)]),
            "single_trial",
            Path(name),
        )
        truths[name] = truth
        return data

    truths: dict[str, np.ndarray] = {}
    train = [session("a", 240, 10, 2), session("b", 240, 10, 2)]
    validation = session("v", 160, 8, 4)
    return train, validation, truths


def test_training_improves_the_validation_score(tmp_path: Path) -> None:
    train, validation, _ = _synthetic_sessions()
    untrained = make_member(SHAPE, train, 0, SETTINGS.seed)
    before = train_module.validation_score(untrained, validation, "cpu", 0)
    result = train_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "checkpoint.pt")
    history = [entry["validation_score"] for entry in result["history"]]
    assert len(history) == SETTINGS.epochs
    assert result["validation_score"] == max(history) > before + 0.1, (before, history)
    assert history[-1] > history[0] or result["best_epoch"] > 0


def test_early_stopping_stops_after_patience(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, validation, _ = _synthetic_sessions()
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    monkeypatch.setattr(train_module, "validation_score", lambda *args: next(scores))
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 6, "patience": 2})
    result = train_member(0, train, validation, SHAPE, settings, tmp_path / "checkpoint.pt")
    assert [entry["epoch"] for entry in result["history"]] == [0, 1, 2]
    assert result["best_epoch"] == 0 and result["validation_score"] == 0.5


def test_a_killed_member_resumes_to_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, validation, _ = _synthetic_sessions()
    uninterrupted = train_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "whole.pt")

    real_score = train_module.validation_score
    calls = {"n": 0}

    def killed_in_epoch_three(*args: object) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real_score(*args)

    monkeypatch.setattr(train_module, "validation_score", killed_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "killed.pt")
    saved = torch.load(tmp_path / "killed.pt", weights_only=False)
    assert saved["state"]["epoch"] == 2, "the checkpoint of the last finished epoch survives the kill"
    monkeypatch.setattr(train_module, "validation_score", real_score)
    resumed = train_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "killed.pt")
    assert [e["epoch"] for e in resumed["history"]] == list(range(SETTINGS.epochs))
    assert resumed["validation_score"] == pytest.approx(uninterrupted["validation_score"], abs=1e-6)
    for name, tensor in uninterrupted["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)


def test_mapping_uses_only_the_first_half(tmp_path: Path) -> None:
    train, validation, truths = _synthetic_sessions()
    member = make_member(SHAPE, train, 0, SETTINGS.seed)
    predictions, _ = map_members([member], validation, MAPPING, "cpu")
    fit, held_out = halves(validation.n_images)
    leaked = SessionData(**{**validation.__dict__, "responses": validation.responses.copy()})
    leaked.responses[:, held_out] = np.random.default_rng(9).poisson(20.0, leaked.responses[:, held_out].shape)
    predictions_again, _ = map_members([member], leaked, MAPPING, "cpu")
    np.testing.assert_array_equal(predictions, predictions_again)
    assert predictions.shape == (1, validation.n_neurons, validation.n_images)


def test_trained_ensemble_predicts_held_out_neurons(tmp_path: Path) -> None:
    train, validation, truths = _synthetic_sessions()
    members = []
    for index in range(2):
        result = train_member(index, train, validation, SHAPE, SETTINGS, tmp_path / f"m{index}.pt")
        member = make_member(SHAPE, train, index, SETTINGS.seed)
        member.load_state_dict(result["state_dict"])
        members.append(member)
    predictions, _ = map_members(members, validation, MAPPING, "cpu")
    _, held_out = halves(validation.n_images)
    r = metrics.pearson_r(predictions.mean(axis=0)[:, held_out], truths["v"][:, held_out])
    untrained, _ = map_members([make_member(SHAPE, train, 5, SETTINGS.seed)], validation, MAPPING, "cpu")
    r_untrained = metrics.pearson_r(untrained[0][:, held_out], truths["v"][:, held_out])
    assert np.median(r) > 0.25 and np.median(r) > np.median(r_untrained) + 0.1, (r, r_untrained)
    assert not np.allclose(predictions[0], predictions[1]), "members differ: their spread is the uncertainty"
