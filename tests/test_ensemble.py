"""The ensemble: architecture, training with early stopping and resume, and the held-out mapping."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from compactcortex import metrics
from compactcortex.ensemble import train as train_module
from compactcortex.ensemble.data import SessionData, halves
from compactcortex.ensemble.mapping import MappingSettings, map_members
from compactcortex.ensemble.train import TrainSettings, fit_member, make_member
from compactcortex.models.ensemble import CoreShape, EnsembleCore, Member, count_parameters, embedding_size

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
    # 1.34M for the core as docs/method.md describes it; the paper counts ~2.26M a member with its readouts
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
    result = fit_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "checkpoint.pt")
    history = [entry["validation_score"] for entry in result["history"]]
    assert len(history) == SETTINGS.epochs
    assert result["validation_score"] == max(history) > before + 0.1, (before, history)
    assert history[-1] > history[0] or result["best_epoch"] > 0


def test_early_stopping_stops_after_patience(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, validation, _ = _synthetic_sessions()
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    monkeypatch.setattr(train_module, "validation_score", lambda *args: next(scores))
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 6, "patience": 2})
    result = fit_member(0, train, validation, SHAPE, settings, tmp_path / "checkpoint.pt")
    assert [entry["epoch"] for entry in result["history"]] == [0, 1, 2]
    assert result["best_epoch"] == 0 and result["validation_score"] == 0.5


def test_a_killed_member_resumes_to_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, validation, _ = _synthetic_sessions()
    uninterrupted = fit_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "whole.pt")

    real_score = train_module.validation_score
    calls = {"n": 0}

    def killed_in_epoch_three(*args: object) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real_score(*args)

    monkeypatch.setattr(train_module, "validation_score", killed_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        fit_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "killed.pt")
    saved = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert saved["state"]["epoch"] == 2, "the checkpoint of the last finished epoch survives the kill"
    monkeypatch.setattr(train_module, "validation_score", real_score)
    resumed = fit_member(0, train, validation, SHAPE, SETTINGS, tmp_path / "killed.pt")
    assert [e["epoch"] for e in resumed["history"]] == list(range(SETTINGS.epochs))
    assert resumed["validation_score"] == pytest.approx(uninterrupted["validation_score"], abs=1e-6)
    for name, tensor in uninterrupted["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)


def test_mapping_uses_only_the_first_half(tmp_path: Path) -> None:
    train, validation, truths = _synthetic_sessions()
    member = make_member(SHAPE, train, 0, SETTINGS.seed)
    # a short fit with the cross-validation still choosing between two penalties: what is tested is what it sees
    mapping = dataclasses.replace(MAPPING, steps=60, penalties=(0.003, 0.1), cv_folds=2)
    predictions, _ = map_members([member], validation, mapping, "cpu")
    fit, held_out = halves(validation.n_images)
    leaked = SessionData(**{**validation.__dict__, "responses": validation.responses.copy()})
    leaked.responses[:, held_out] = np.random.default_rng(9).poisson(20.0, leaked.responses[:, held_out].shape)
    predictions_again, _ = map_members([member], leaked, mapping, "cpu")
    np.testing.assert_array_equal(predictions, predictions_again)
    assert predictions.shape == (1, validation.n_neurons, validation.n_images)


def test_trained_ensemble_predicts_held_out_neurons(tmp_path: Path) -> None:
    train, validation, truths = _synthetic_sessions()
    members = []
    for index in range(2):
        result = fit_member(index, train, validation, SHAPE, SETTINGS, tmp_path / f"m{index}.pt")
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


def test_a_test_sessions_fit_half_trains_the_core_and_its_held_out_half_stays_unseen(tmp_path: Path) -> None:
    """``ensemble.test_fit_halves``: the fit half of a test session joins training as one more session. Only its
    first half is kept (its held-out responses replaced by noise change nothing that training sees); the member's own
    readout of that session then predicts its held-out half."""
    from compactcortex.ensemble.data import fit_half

    train, validation, truths = _synthetic_sessions()
    test = _synthetic_sessions(seed=4)[1]  # a third session, of other neurons
    test = SessionData(**{**test.__dict__, "session": "t"})
    truths["t"] = _synthetic_sessions(seed=4)[2]["v"]
    lent = fit_half(test)
    fit, held_out = halves(test.n_images)
    assert lent.n_images == fit.size == 80 and list(lent.image_ids) == list(test.image_ids[fit])
    np.testing.assert_array_equal(lent.responses, test.responses[:, fit])
    torch.testing.assert_close(lent.features, test.features[fit])

    noisy = SessionData(**{**test.__dict__, "responses": test.responses.copy()})
    noisy.responses[:, held_out] = np.random.default_rng(9).poisson(20.0, noisy.responses[:, held_out].shape)
    lent_noisy = fit_half(noisy)  # training sees only what fit_half passes on: the same, whatever the held-out half
    np.testing.assert_array_equal(lent_noisy.responses, lent.responses)
    assert list(lent_noisy.image_ids) == list(lent.image_ids)
    result = fit_member(0, [*train, lent], validation, SHAPE, SETTINGS, tmp_path / "member.pt")
    member = make_member(SHAPE, [*train, lent], 0, SETTINGS.seed)
    member.load_state_dict(result["state_dict"])
    with torch.no_grad():
        predicted = member(test.features[held_out].float(), "t").numpy().T
    r = metrics.pearson_r(predicted, truths["t"][:, held_out])
    assert np.median(r) > 0.4, r


def _session_files(tmp_path: Path, reliable: bool = True) -> tuple[Path, Path]:
    """A small session dataset and a matching feature cache on disk."""
    from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset

    rng = np.random.default_rng(0)
    dataset = build_session_dataset(
        source="x", session="s9", monkey="M", responses=rng.poisson(3.0, (4, 20, 3)).astype(float),
        images=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8), neuron_ids=np.array(list("abcd")),
        image_ids=np.array([f"i{k}" for k in range(20)]), image_types=np.array(["natural"] * 20),
        response_kind="single_trial", latency_ms=50, window_ms=100, reliability_splits=5,
        min_reliability=-2.0 if reliable else 2.0, seed=0, attrs={"config_sha256": "0" * 64, "code_version": "t"},
    )  # fmt: skip
    write_session_dataset(dataset, tmp_path / "s9.nc")
    features = {
        "layers": {"blocks.5": torch.zeros(20, 8, 6, 6, dtype=torch.float16)},
        "image_ids": [str(image) for image in dataset["image"].values],
    }
    torch.save(features, tmp_path / "s9.pt")
    return tmp_path / "s9.nc", tmp_path / "s9.pt"


def test_a_session_without_reliable_neurons_is_a_clear_error(tmp_path: Path) -> None:
    from compactcortex.ensemble.data import load_session
    from compactcortex.errors import InputDataError

    dataset, features = _session_files(tmp_path, reliable=False)
    with pytest.raises(InputDataError, match=r"s9\.nc: no neuron passes the reliability criterion"):
        load_session(dataset, features, "blocks.5")


def test_stale_or_corrupt_feature_caches_are_clear_errors(tmp_path: Path) -> None:
    from compactcortex.ensemble.data import load_features, load_session
    from compactcortex.errors import InputDataError

    dataset, features = _session_files(tmp_path)
    assert load_session(dataset, features, "blocks.5").n_neurons == 4
    with pytest.raises(InputDataError, match="no features of layer 'blocks.8'"):
        load_features(features, "blocks.8")
    with pytest.raises(InputDataError, match="other images than the session's"):
        load_features(features, "blocks.5", np.array([f"j{k}" for k in range(20)]))
    features.write_bytes(features.read_bytes()[:100])
    with pytest.raises(InputDataError, match=r"s9\.pt: cannot be read as a feature cache"):
        load_features(features, "blocks.5")


def test_corrupt_member_file_is_a_clear_error(tmp_path: Path) -> None:
    from compactcortex.errors import InputDataError
    from compactcortex.io.members import load_member

    (tmp_path / "member0.pt").write_bytes(b"\x80\x02truncated")
    with pytest.raises(InputDataError, match=r"member0\.pt: cannot be read as an ensemble member"):
        load_member(tmp_path / "member0.pt")


def test_active_learning_ranks_the_images_members_disagree_on() -> None:
    from compactcortex.ensemble.active_learning import disagreement

    rng = np.random.default_rng(0)
    shared = rng.normal(size=(1, 6, 50))
    predictions = np.repeat(shared, 4, axis=0) + 0.01 * rng.normal(size=(4, 6, 50))
    predictions[:, :, [7, 31]] += rng.normal(scale=2.0, size=(4, 6, 2))
    assert set(np.argsort(-disagreement(predictions))[:2]) == {7, 31}
