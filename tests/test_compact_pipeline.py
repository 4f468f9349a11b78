"""The compression pipeline around the students: the distillation pool, model cards, per-neuron compression,
the chunk plan, and the evaluation of compact models beside the ensemble (docs/method.md section 4)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import xarray as xr

from compactcortex.compact.compress import (
    CompressSettings,
    compress_neurons,
    fold_output_scale_,
    initial_seed,
    train_students,
)
from compactcortex.compact.distill import DistillSettings
from compactcortex.compact.stream import BatchSampler, CachedImages, ImageArray, LabelArray, PoolData
from compactcortex.config import validate_config
from compactcortex.errors import InputDataError
from compactcortex.evaluate import comparison_table, evaluation_table
from compactcortex.io.compact_models import CARD_FORMAT, load_compact_model, read_card, save_compact_model
from compactcortex.io.compression_plan import plan_chunks, read_plan
from compactcortex.io.predictions import PredictionIndex, write_predictions
from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset
from compactcortex.io.teacher_labels import TeacherLabels, TeacherLabelWriter, read_teacher_labels
from compactcortex.jobs.evaluate import evaluate_session
from compactcortex.models.compact import N_LAYERS, CompactModel, count_parameters, initial_student, predict
from compactcortex.pool import augment_images, pool_recipe, pool_split
from compactcortex.provenance import sha256_file
from tests.test_compact_bank import randomise_batchnorm_
from tests.test_compact_distill_prune import make_images, make_teacher

SIZE = 16
SESSIONS = [{"id": "s1", "role": "train"}, {"id": "s2", "role": "validation"}, {"id": "s3", "role": "test"}]
MINIMAL_CONFIG = {"dataset": "d", "source": {"kind": "virtual_lab"}, "sessions": SESSIONS}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------------------------------
# the distillation pool
# ---------------------------------------------------------------------------------------------------------------


def test_augmented_copies_are_seeded_transforms_of_the_source() -> None:
    source = make_images(6, seed=3, size=32)
    first = augment_images(np.random.default_rng(0), source, 40)
    again = augment_images(np.random.default_rng(0), source, 40)
    other = augment_images(np.random.default_rng(1), source, 40)
    assert first.dtype == np.uint8 and first.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(np.unique(first.reshape(40, -1), axis=0)) == 40  # no two copies alike
    distance = np.abs(first[:, None].astype(int) - source[None].astype(int)).mean(axis=(2, 3, 4))
    assert distance.min() > 0.5  # no copy is a source image unchanged
    assert abs(first.mean() - source.mean()) < 15


def smooth_images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Very smooth colour images (2 x 2 noise, bilinearly upsampled): small shifts and zooms keep their content."""
    coarse = torch.as_tensor(make_images(n, seed, size=8)).permute(0, 3, 1, 2).double()
    smooth = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return smooth.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_augmented_copies_of_one_image_keep_its_brightness_and_content() -> None:
    """From a single source image every copy is of that image: flipped half the time, zoomed, shifted, its contrast
    changed about its mean."""
    source = smooth_images(1, seed=4)
    copies = augment_images(np.random.default_rng(2), source, 200).astype(np.float64)
    image = source[0].astype(np.float64)
    assert abs(copies.mean() - image.mean()) < 15
    assert np.all(np.abs(copies.mean(axis=(1, 2, 3)) - image.mean()) < 25)  # zooms crop (observed 14)
    plain = np.array([_pearson(c.ravel(), image.ravel()) for c in copies])
    flipped = np.array([_pearson(c.ravel(), image[:, ::-1].ravel()) for c in copies])
    assert np.all(np.maximum(plain, flipped) > 0.85), np.maximum(plain, flipped).min()  # observed 0.96
    assert 0.35 < np.mean(flipped > plain) < 0.65  # a horizontal flip half the time
    contrast = copies.std(axis=(1, 2, 3)) / image.std()
    assert contrast.min() > 0.5 and contrast.max() < 1.5 and contrast.std() > 0.02


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 8, 8, 3), dtype=np.float32),
        np.zeros((0, 8, 8, 3), dtype=np.uint8),
        np.zeros((8, 8, 3), dtype=np.uint8),
    ],
    ids=["float", "empty", "3d"],
)
def test_augmentation_rejects_bad_images(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 images"):
        augment_images(np.random.default_rng(0), images, 3)


def test_pool_split_holds_out_the_last_images() -> None:
    split = pool_split(10, 3)
    assert split.tolist() == ["train"] * 7 + ["heldout"] * 3
    assert pool_split(2, 1).tolist() == ["train", "heldout"]
    for heldout in (0, -1, 10, 11):
        with pytest.raises(ValueError, match="held-out"):
            pool_split(10, heldout)


def _session_dataset(
    tmp_path: Path, rate: np.ndarray, repeats: int, response_kind: str, image_size: int = 8, seed: int = 0
) -> Path:
    """A session 's9' whose responses are Poisson draws of ``rate`` (neuron, image), or their exact repeat means."""
    rng = np.random.default_rng(seed)
    n_neurons, n_images = rate.shape
    if response_kind == "single_trial":
        responses = rng.poisson(rate[:, :, None], (n_neurons, n_images, repeats)).astype(float)
    else:
        responses = rng.poisson(rate[:, :, None], (n_neurons, n_images, repeats)).mean(axis=2, keepdims=True)
    dataset = build_session_dataset(
        source="x", session="s9", monkey="M", responses=responses,
        images=make_images(n_images, seed=seed + 1, size=image_size),
        neuron_ids=np.array([f"s9_n{k:03d}" for k in range(n_neurons)]),
        image_ids=np.array([f"s9_img{k:05d}" for k in range(n_images)]), image_types=np.array(["natural"] * n_images),
        response_kind=response_kind, latency_ms=50, window_ms=100, reliability_splits=5, min_reliability=-2.0,
        seed=0, attrs={"config_sha256": "0" * 64, "code_version": "t"},
    )  # fmt: skip
    path = tmp_path / "s9.nc"
    write_session_dataset(dataset, path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# model cards
# ---------------------------------------------------------------------------------------------------------------


def _card_model() -> CompactModel:
    torch.manual_seed(0)
    model = CompactModel([3, 4, 3, 2, 3], image_size=SIZE, means=(100.0, 110.0, 120.0))
    randomise_batchnorm_([model], seed=1)
    return model.eval()


@pytest.fixture
def saved_card(tmp_path: Path) -> tuple[Path, CompactModel]:
    model = _card_model()
    card = {"session": "s3", "neuron": "s3_n001", "fidelity_r2": 0.8, "r2_er": float("nan"), "seed": 7}
    return save_compact_model(model, card, tmp_path, "s3_n001"), model


def test_model_card_round_trips(saved_card: tuple[Path, CompactModel]) -> None:
    path, model = saved_card
    assert path.name == "s3_n001.json" and (path.parent / "s3_n001.pt").is_file()
    loaded, card = load_compact_model(path)
    assert not loaded.training and loaded.filters == (3, 4, 3, 2, 3) and loaded is not model
    images = np.random.default_rng(0).integers(0, 256, (20, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(predict(loaded, images), predict(model, images), rtol=0, atol=1e-6)
    assert card["format"] == CARD_FORMAT
    assert card["architecture"] == model.config() and card["architecture"]["means"] == [100.0, 110.0, 120.0]
    assert card["n_parameters"] == model.n_parameters() == count_parameters([3, 4, 3, 2, 3], SIZE)
    assert card["state_dict"] == "s3_n001.pt"
    assert card["state_dict_sha256"] == sha256_file(path.parent / "s3_n001.pt")
    assert (card["session"], card["neuron"], card["fidelity_r2"], card["seed"]) == ("s3", "s3_n001", 0.8, 7)
    assert card["r2_er"] is None
    assert read_card(path) == card


def test_non_finite_card_values_are_json_null(tmp_path: Path) -> None:
    card = {"session": "s", "neuron": "n", "a": float("nan"), "nested": {"b": [1.0, float("inf"), -float("inf")]}}
    path = save_compact_model(_card_model(), card, tmp_path, "n")
    text = path.read_text()

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} written into the card")

    written = json.loads(text, parse_constant=no_constants)  # strict JSON: no NaN / Infinity tokens
    assert written["a"] is None and written["nested"] == {"b": [1.0, None, None]}


def _edit_card(path: Path, **changes: object) -> None:
    card = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del card[key]
        else:
            card[key] = value
    path.write_text(json.dumps(card))


def _corrupt(case: str, path: Path) -> Path:
    """Damage a saved card or its state dict; returns the file the error must name."""
    state = path.parent / "s3_n001.pt"
    if case == "truncated card":
        path.write_text(path.read_text()[:40])
    elif case == "garbage card":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif case == "card not an object":
        path.write_text("[1, 2]")
    elif case == "card lacks a key":
        _edit_card(path, state_dict_sha256=None)
    elif case == "unknown format":
        _edit_card(path, format="compactcortex.compact_model/99")
    elif case == "missing state dict":
        state.unlink()
        return state
    elif case == "changed state dict":
        data = bytearray(state.read_bytes())
        data[len(data) // 2] ^= 0xFF
        state.write_bytes(bytes(data))
        return state
    elif case == "another architecture":
        torch.save(CompactModel([2] * N_LAYERS, image_size=SIZE).state_dict(), state)
        _edit_card(path, state_dict_sha256=sha256_file(state))
        return state
    elif case == "unbuildable architecture":
        _edit_card(path, architecture={"filters": [0, 1, 1, 1, 1], "image_size": SIZE})
    elif case == "n_parameters":
        _edit_card(path, n_parameters=json.loads(path.read_text())["n_parameters"] + 1)
    else:
        raise AssertionError(case)
    return path


CORRUPTIONS = {
    "truncated card": "not a readable JSON model card",
    "garbage card": "not a readable JSON model card",
    "card not an object": "must be a JSON object",
    "card lacks a key": "lacks state_dict_sha256",
    "unknown format": "unknown model card format",
    "missing state dict": "not found",
    "changed state dict": "checksum differs",
    "another architecture": "cannot be loaded into the card's architecture",
    "unbuildable architecture": "architecture cannot be built",
    "n_parameters": "n_parameters",
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_cards_are_errors_naming_the_file(case: str, saved_card: tuple[Path, CompactModel]) -> None:
    path, _ = saved_card
    named = _corrupt(case, path)
    with pytest.raises(InputDataError, match=CORRUPTIONS[case]) as error:
        load_compact_model(path)
    assert error.value.path == named
    assert str(named) in str(error.value)


def test_missing_card_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not found") as error:
        read_card(tmp_path / "nothing.json")
    assert error.value.path == tmp_path / "nothing.json"


# ---------------------------------------------------------------------------------------------------------------
# compression of a session's neurons
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "offset"), [(3.7, -2.5), (-0.4, 120.0)])
def test_fold_output_scale_is_exact(scale: float, offset: float) -> None:
    images = make_images(32, seed=8, size=SIZE)
    model = make_teacher(images, seed=2)
    x = model.preprocess(images)
    with torch.no_grad():
        before = model(x)
        assert fold_output_scale_(model, scale, offset) is model
        after = model(x)
    assert before.std() > 1.0  # the check has teeth
    torch.testing.assert_close(after, scale * before + offset, rtol=1e-5, atol=1e-5)


FILTERS = 5
N_POOL = 320
N_HELDOUT = 64
NEURONS = ["s3_n000", "s3_n001"]


def compact_config(**changes: object) -> dict:
    """The config's compact section (schema defaults) with tiny sizes."""
    compact = validate_config(MINIMAL_CONFIG)["compact"]
    compact.update(filters=FILTERS, image_size=SIZE, steps=100, retrain_steps=50, batch_size=16)
    compact.update(learning_rate=1e-2, smoothing_every=10)
    compact["prune"]["probe_images"] = 64
    compact.update(changes)
    return compact


def test_settings_from_config() -> None:
    compact = compact_config()
    assert compact["prune"]["min_filters"] == 3 and compact["batched"] == "auto"
    settings = CompressSettings.from_config(compact, 0, "s3", "cpu")
    assert (settings.filters, settings.image_size, settings.retrain_steps, settings.probe_images) == (5, 16, 50, 64)
    assert (settings.distill.steps, settings.distill.batch_size, settings.distill.learning_rate) == (100, 16, 1e-2)
    assert settings.distill.cosine_decay is True and settings.distill.smoothing_every == 10
    assert (settings.prune.variance_fraction, settings.prune.fidelity_fraction) == (0.9, 0.9)
    assert not settings.batched
    assert CompressSettings.from_config(compact, 0, "s3", "cuda").batched
    assert CompressSettings.from_config(compact_config(batched="always"), 0, "s3", "cpu").batched
    assert not CompressSettings.from_config(compact_config(batched="never"), 0, "s3", "cuda").batched
    # the batch order is seeded per session (every student of a session sees the same batches)
    assert settings.distill.seed == CompressSettings.from_config(compact, 0, "s3", "cpu").distill.seed
    assert settings.distill.seed != CompressSettings.from_config(compact, 0, "s4", "cpu").distill.seed
    assert settings.distill.seed != CompressSettings.from_config(compact, 1, "s3", "cpu").distill.seed
    assert initial_seed(0, "s3", "a") == initial_seed(0, "s3", "a")
    assert len({initial_seed(0, "s3", "a"), initial_seed(0, "s3", "b"), initial_seed(0, "s4", "a")}) == 3


@pytest.fixture(scope="module")
def pool() -> dict:
    """A pool of smooth images labelled by two different random teachers (in the teacher's own units)."""
    images = make_images(N_POOL, seed=1, size=SIZE)
    labels = np.stack([predict(make_teacher(images[:100], seed=seed), images)[:, 0] for seed in (10, 11)])
    split = pool_split(N_POOL, N_HELDOUT)
    return {"images": images, "labels": labels, "split": split}


BLOCK = 96  # label blocks of the tests' pools: the 256 training images span three


def pool_data(images: np.ndarray, labels: np.ndarray, neurons: list[str], heldout: int = N_HELDOUT) -> PoolData:
    """A pool held in memory, read as a compression job reads one (by index, block by block)."""
    return PoolData(ImageArray(images), LabelArray(labels, np.array(neurons)), len(images), heldout, BLOCK)


@pytest.fixture(scope="module")
def compressed(pool: dict) -> dict:
    settings = CompressSettings.from_config(compact_config(), 0, "s3", "cpu")
    assert not settings.batched

    def run(labels: np.ndarray, neurons: list[str], batched: bool = False) -> list:
        call_settings = dataclasses.replace(settings, batched=batched)
        data = pool_data(pool["images"], labels, neurons)
        return compress_neurons(data, call_settings, seed=0, session="s3")

    return {
        "one_by_one": run(pool["labels"], NEURONS),
        "again": run(pool["labels"], NEURONS),
        "second_alone": run(pool["labels"][1:], NEURONS[1:]),
        "rescaled_first": run(10 * pool["labels"][:1] + 3, NEURONS[:1]),
    }


@pytest.fixture(scope="module")
def short_runs(pool: dict) -> dict:
    """A short, slow compression (40 + 20 steps at lr 3e-3), batched and one by one: see the test below."""
    settings = CompressSettings.from_config(
        compact_config(steps=40, retrain_steps=20, learning_rate=3e-3), 0, "s3", "cpu"
    )
    return {
        batched: compress_neurons(
            pool_data(pool["images"], pool["labels"], NEURONS),
            dataclasses.replace(settings, batched=batched),
            seed=0,
            session="s3",
        )
        for batched in (False, True)
    }


def test_compression_gives_a_pruned_model_per_neuron(compressed: dict, pool: dict) -> None:
    results = compressed["one_by_one"]
    assert len(results) == 2
    train = pool["split"] == "train"
    for index, (model, report) in enumerate(results):
        assert isinstance(model, CompactModel) and not model.training and model.n_outputs == 1
        assert report["neuron"] == NEURONS[index]
        assert report["init_seed"] == initial_seed(0, "s3", NEURONS[index])
        assert report["filters_initial"] == [FILTERS] * N_LAYERS
        assert report["filters"] == list(model.filters)
        assert all(3 <= f <= FILTERS for f in model.filters)  # min_filters <= width <= the initial width
        assert report["n_parameters"] == model.n_parameters() == count_parameters(model.filters, SIZE)
        assert [len(kept) for kept in report["kept_filters"]] == report["filters"]
        for key in ("fidelity_r2", "fidelity_r2_unpruned", "fidelity_r2_pruned_before_retraining"):
            assert 0.0 <= report[key] <= 1.0, key
        assert report["training"] == {
            "pool_train_images": N_POOL - N_HELDOUT,
            "pool_heldout_images": N_HELDOUT,
            "probe_images": 64,
            "calibration_images": N_POOL - N_HELDOUT,
            "steps": 100,
            "retrain_steps": 50,
            "batched": False,
        }
        assert report["teacher_mean"] == pytest.approx(pool["labels"][index, train].mean(), rel=1e-12)
        assert report["teacher_sd"] == pytest.approx(pool["labels"][index, train].std(), rel=1e-12)
        assert report["fidelity_r2"] > 0.3  # it learnt the teacher (observed 0.48 and 0.65)


def test_reported_fidelity_is_the_held_out_squared_correlation(compressed: dict, pool: dict) -> None:
    heldout = pool["split"] == "heldout"
    for index, (model, report) in enumerate(compressed["one_by_one"]):
        prediction = predict(model, pool["images"][heldout])[:, 0]
        r = _pearson(prediction, pool["labels"][index, heldout])
        assert report["fidelity_r2"] == pytest.approx(r**2, abs=1e-6)


def test_compact_models_predict_in_the_teachers_units(compressed: dict, pool: dict) -> None:
    heldout = pool["split"] == "heldout"
    for index, (model, _) in enumerate(compressed["one_by_one"]):
        labels = pool["labels"][index]
        prediction = predict(model, pool["images"])[:, 0]
        train_prediction, heldout_prediction = prediction[~heldout], prediction[heldout]
        # least squares on z-scored targets, then unfolded: about the teacher's mean (observed within 0.12 sd; a
        # missing offset would be ~10 sd off), and no wider than the teacher
        assert abs(train_prediction.mean() - labels[~heldout].mean()) < 0.25 * labels[~heldout].std()
        assert abs(heldout_prediction.mean() - labels[heldout].mean()) < 0.3 * labels[heldout].std()
        assert 0.3 * labels.std() < prediction.std() < 1.1 * labels.std()
    # teacher labels in other units (10 x + 3): the same students (the z-scored targets are the same), rescaled
    first = predict(compressed["one_by_one"][0][0], pool["images"])[:, 0]
    rescaled = predict(compressed["rescaled_first"][0][0], pool["images"])[:, 0]
    np.testing.assert_allclose(rescaled, 10 * first + 3, rtol=0, atol=1e-5 * np.abs(10 * first + 3).max())


def _assert_same_state(a: CompactModel, b: CompactModel) -> None:
    assert a.config() == b.config()
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name, value in state_a.items():
        assert torch.equal(value, state_b[name]), name


def test_compression_is_deterministic(compressed: dict) -> None:
    for (model, report), (again, again_report) in zip(compressed["one_by_one"], compressed["again"], strict=True):
        _assert_same_state(model, again)
        assert {k: v for k, v in report.items() if k != "seconds"} == {
            k: v for k, v in again_report.items() if k != "seconds"
        }


def test_a_neurons_model_does_not_depend_on_its_chunk(compressed: dict) -> None:
    (with_first, report), (alone, alone_report) = compressed["one_by_one"][1], compressed["second_alone"][0]
    assert report["neuron"] == alone_report["neuron"] == NEURONS[1]
    _assert_same_state(with_first, alone)
    # every number of the report (the teacher's statistics folded into the readout, the fidelities), so the card
    assert {k: v for k, v in report.items() if k != "seconds"} == {
        k: v for k, v in alone_report.items() if k != "seconds"
    }
    # and the two neurons' students differ (their own teachers and initialisations)
    first = compressed["one_by_one"][0][0]
    assert not torch.equal(first.layers["layer0_conv"].weight, with_first.layers["layer0_conv"].weight)


def test_a_neurons_card_bytes_do_not_depend_on_its_chunk(compressed: dict, tmp_path: Path) -> None:
    (with_first, report), (alone, alone_report) = compressed["one_by_one"][1], compressed["second_alone"][0]
    strip = {"seconds"}
    first = save_compact_model(with_first, {k: v for k, v in report.items() if k not in strip}, tmp_path / "a", "n")
    second = save_compact_model(alone, {k: v for k, v in alone_report.items() if k not in strip}, tmp_path / "b", "n")
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a" / "n.pt").read_bytes() == (tmp_path / "b" / "n.pt").read_bytes()


def test_batched_compression_agrees_with_one_by_one(short_runs: dict, pool: dict) -> None:
    """Batched (a StudentBank) vs one by one: the same students and batches. Not to rounding in float32: the conv
    biases in front of BatchNorm get rounding-noise gradients that Adam turns into +-lr steps, and after some tens of
    steps the two layouts' trajectories separate chaotically (see tests/test_compact_bank.py; at the 100 + 50 steps
    of lr 1e-2 above, held-out fidelities differ by up to 0.08). A short run at a low learning rate has not separated
    yet (observed: fidelity within 1e-6, predictions correlated to 1 - 1e-11), so the tolerances here, fidelity
    within 0.05 and correlation > 0.95, leave room for other platforms' rounding while still catching a batched
    path that trains or prunes the wrong student."""
    heldout = pool["images"][pool["split"] == "heldout"]
    pairs = zip(short_runs[False], short_runs[True], strict=True)
    mixed = False
    for index, ((single, report), (batched, batched_report)) in enumerate(pairs):
        assert batched_report["training"]["batched"] is True and report["training"]["batched"] is False
        assert batched_report["neuron"] == report["neuron"] == NEURONS[index]
        assert all(3 <= f <= FILTERS for f in batched.filters)
        assert next(batched.parameters()).dtype == next(single.parameters()).dtype == torch.float32
        for key in ("fidelity_r2_unpruned", "fidelity_r2"):
            assert abs(batched_report[key] - report[key]) < 0.05, key
        assert _pearson(predict(batched, heldout)[:, 0], predict(single, heldout)[:, 0]) > 0.95
        assert batched_report["teacher_mean"] == report["teacher_mean"]
        mixed |= list(single.filters) != [FILTERS] * N_LAYERS
    assert mixed  # some student was pruned, so the retraining bank padded it


def test_train_students_batched_equals_one_by_one_float64(pool: dict) -> None:
    """In float64 the bank follows the one-by-one trajectories to rounding (tests/test_compact_bank.py)."""
    images, targets = pool["images"][:200], pool["labels"][:, :200].T
    targets = (targets - targets.mean(axis=0)) / targets.std(axis=0)
    means = images.reshape(-1, 3).mean(axis=0).tolist()
    settings = DistillSettings(steps=60, batch_size=16, learning_rate=1e-2, smoothing_every=20, seed=3)

    def students() -> list[CompactModel]:
        return [initial_student(4, SIZE, means, initial_seed(0, "s3", n)).double() for n in NEURONS]

    data = pool_data(students()[0].preprocess(images), targets.T, NEURONS, heldout=0)
    single = train_students(students(), data, settings, batched=False)
    batched = train_students(students(), data, settings, batched=True)
    for a, b in zip(single, batched, strict=True):
        assert not a.training and not b.training
        pa, pb = predict(a, images)[:, 0], predict(b, images)[:, 0]
        assert pa.std() > 0.3  # it learnt something
        np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-4 * pa.std())


def test_train_students_keeps_the_students_dtype(pool: dict) -> None:
    images, targets = pool["images"][:64], np.random.default_rng(0).normal(size=(64, 2))
    settings = DistillSettings(steps=2, batch_size=16, seed=0)
    students = [initial_student(3, SIZE, (0.0, 0.0, 0.0), seed).double() for seed in (1, 2)]
    data = pool_data(students[0].preprocess(images), targets.T, NEURONS, heldout=0)
    trained = train_students(students, data, settings, batched=True)
    assert [next(s.parameters()).dtype for s in trained] == [torch.float64, torch.float64]


def test_compression_rejects_bad_labels(pool: dict) -> None:
    settings = CompressSettings.from_config(compact_config(steps=2, retrain_steps=1), 0, "s3", "cpu")
    images, labels = pool["images"], pool["labels"]
    with pytest.raises(ValueError, match="labels of 319 images, but the pool has 320"):
        compress_neurons(pool_data(images, labels[:, :-1], NEURONS), settings, seed=0, session="s3")
    with pytest.raises(ValueError, match="2 rows of labels for 1 neuron"):
        compress_neurons(pool_data(images, labels, NEURONS[:1]), settings, seed=0, session="s3")
    constant = labels.copy()
    constant[1] = 4.0
    with pytest.raises(ValueError, match="constant for.*s3_n001"):
        compress_neurons(pool_data(images, constant, NEURONS), settings, seed=0, session="s3")


# ---------------------------------------------------------------------------------------------------------------
# the chunk plan
# ---------------------------------------------------------------------------------------------------------------


def test_plan_chunks_splits_in_order() -> None:
    neurons = [f"s3_n{k:03d}" for k in (6, 0, 5, 1, 4, 2, 3)]
    plan = plan_chunks(neurons, 3)
    assert list(plan) == ["chunk000", "chunk001", "chunk002"]
    assert [len(chunk) for chunk in plan.values()] == [3, 3, 1]
    assert [n for chunk in plan.values() for n in chunk] == neurons
    assert plan_chunks(neurons, 7) == {"chunk000": neurons}
    assert plan_chunks(neurons, 100) == {"chunk000": neurons}
    assert list(plan_chunks(neurons, 1)) == [f"chunk{k:03d}" for k in range(7)]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="neurons_per_job"):
            plan_chunks(neurons, bad)


def test_read_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"neurons_per_job": 2, "chunks": {"chunk000": ["a", "b"], "chunk001": ["c"]}}))
    assert read_plan(path) == {"chunk000": ["a", "b"], "chunk001": ["c"]}
    for text in ('{"chunks": {"chunk000": ["a"]', '{"neurons_per_job": 2}', "", "\x00\xff"):
        path.write_text(text)
        with pytest.raises(InputDataError, match="compression plan") as error:
            read_plan(path)
        assert error.value.path == path
    with pytest.raises(InputDataError, match="compression plan"):
        read_plan(tmp_path / "missing.json")


@pytest.mark.parametrize("text", ["[]", "null"])
def test_read_plan_rejects_json_that_is_not_an_object(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(InputDataError, match="compression plan"):
        read_plan(path)


# ---------------------------------------------------------------------------------------------------------------
# evaluation of the compact models beside the ensemble
# ---------------------------------------------------------------------------------------------------------------

N_NEURONS = 5
N_IMAGES = 40
COVERED = [3, 0, 2]  # neurons with a published compact model (written in this order)


def _model_files(tmp_path: Path, response_kind: str, published: bool = True) -> dict:
    """A session with known rates, and prediction files: ensemble (2 members: rate + small noise), compact (the
    rate), task_driven (noise only) and, optionally, published_compact (the rate, for COVERED neurons only)."""
    rng = np.random.default_rng(1)
    rate = rng.uniform(0.5, 20.0, (N_NEURONS, N_IMAGES))
    dataset = _session_dataset(tmp_path, rate, 8, response_kind)
    with xr.open_dataset(dataset) as opened:
        neurons, image_ids = opened["neuron"].values, opened["image"].values
    index = PredictionIndex("s9", neurons, image_ids)
    members = np.stack([rate + rng.normal(0.0, 0.1, rate.shape) for _ in range(2)])
    paths = {name: tmp_path / f"{name}.nc" for name in ("ensemble", "task_driven", "compact", "published_compact")}
    write_predictions(paths["ensemble"], members, index, {}, [], member=np.arange(2))
    write_predictions(paths["task_driven"], rng.normal(size=rate.shape), index, {}, [])
    write_predictions(paths["compact"], rate, index, {}, [])
    if published:
        write_predictions(
            paths["published_compact"], rate[COVERED], PredictionIndex("s9", neurons[COVERED], image_ids), {}, []
        )
    else:
        del paths["published_compact"]
    truth = tmp_path / "truth.nc"
    xr.Dataset({"rate": (("neuron", "image"), rate)}, coords={"neuron": neurons, "image": image_ids}).to_netcdf(truth)
    return {"dataset": dataset, "paths": paths, "truth": truth, "neurons": neurons}


def test_evaluation_table_scores_every_model(tmp_path: Path) -> None:
    files = _model_files(tmp_path, "single_trial", published=False)
    table = evaluation_table(files["dataset"], files["paths"], files["truth"])
    assert table["neuron"].tolist() == files["neurons"].tolist()
    for column in ("r_ensemble", "r_task_driven", "r_compact", "r2_er_compact", "r_to_truth_compact"):
        assert table[column].notna().all(), column
    assert "r_published_compact" not in table
    assert (table["r_compact"] > 0.7).all()
    assert (table["r_compact"] > table["r_task_driven"]).all()
    assert (table["r2_er_compact"] > table["r2_er_task_driven"] + 0.3).all()
    np.testing.assert_allclose(table["r_ensemble"], table["r_compact"], atol=0.01)  # rate + small noise
    np.testing.assert_allclose(table["r_to_truth_compact"], 1.0, atol=1e-12)
    assert (table["r_to_truth_task_driven"].abs() < 0.8).all()
    assert (table["member_spread"] > 0.02).all() and (table["member_spread"] < 0.15).all()


@pytest.mark.parametrize(
    "response_kind",
    [
        "repeat_averaged",
        "single_trial",
    ],
)
def test_published_models_cover_some_neurons(tmp_path: Path, response_kind: str) -> None:
    files = _model_files(tmp_path, response_kind)
    table = evaluation_table(files["dataset"], files["paths"])
    covered = np.zeros(N_NEURONS, dtype=bool)
    covered[COVERED] = True
    assert table["r_published_compact"].notna().tolist() == covered.tolist()
    assert table.loc[~covered, ["r_published_compact", "r2_er_published_compact"]].isna().all().all()
    # written in another neuron order: aligned by neuron id, so equal to the compact models (the same rates)
    np.testing.assert_allclose(table.loc[covered, "r_published_compact"], table.loc[covered, "r_compact"], atol=1e-12)
    assert (table["r_compact"] > table["r_task_driven"]).all()  # the task-driven column is pure noise

    output = tmp_path / "evaluation" / "s9.csv"
    output.parent.mkdir()
    evaluate_session(dataset=str(files["dataset"]), predictions={k: str(v) for k, v in files["paths"].items()},
                         output=str(output))  # fmt: skip
    written = pd.read_csv(output)
    assert written["r_published_compact"].notna().sum() == len(COVERED)
    comparison = comparison_table([output])
    assert len(comparison) == 1
    row = comparison.iloc[0]
    assert row["session"] == "s9" and row["n_neurons"] == N_NEURONS
    assert row["n_neurons_ensemble"] == row["n_neurons_compact"] == row["n_neurons_task_driven"] == N_NEURONS
    assert row["n_neurons_published_compact"] == len(COVERED)
    assert row["n_neurons_paired"] == len(COVERED)
    assert row["median_r_compact"] == pytest.approx(np.median(table["r_compact"]), abs=1e-5)
    assert row["median_r_published_compact"] == pytest.approx(np.median(table.loc[covered, "r_compact"]), abs=1e-5)
    assert row["paired_median_r_compact"] == pytest.approx(np.median(table.loc[covered, "r_compact"]), abs=1e-5)
    assert row["paired_median_r_published_compact"] == pytest.approx(row["paired_median_r_compact"], abs=1e-5)
    assert row["paired_median_r_task_driven"] == pytest.approx(np.median(table.loc[covered, "r_task_driven"]), abs=1e-5)


def test_evaluation_table_rejects_unknown_models(tmp_path: Path) -> None:
    files = _model_files(tmp_path, "repeat_averaged", published=False)
    paths = files["paths"]
    with pytest.raises(ValueError, match="among"):
        evaluation_table(files["dataset"], {**paths, "compact_v2": paths["compact"]})
    with pytest.raises(ValueError, match="must include 'ensemble'"):
        evaluation_table(files["dataset"], {"compact": paths["compact"]})


# ---------------------------------------------------------------------------------------------------------------
# the pool read by index
# ---------------------------------------------------------------------------------------------------------------


def test_the_batch_order_visits_every_training_image_once_per_epoch() -> None:
    sampler = BatchSampler(n_images=1000, batch_size=64, seed=5, block=300)
    assert sampler.batches_per_epoch == 16
    for epoch in range(2):
        batches = [sampler.batch(epoch * 16 + b) for b in range(16)]
        assert [len(b) for b in batches] == [64] * 15 + [40]
        assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
        # a batch's labels lie in at most two blocks of the label file
        assert all(len(np.unique(b // 300)) <= 2 for b in batches)
    assert not np.array_equal(sampler.batch(0), sampler.batch(16))  # each epoch in a new order
    # a pure function of (seed, step): asked in any order, by a fresh sampler
    fresh = BatchSampler(n_images=1000, batch_size=64, seed=5, block=300)
    np.testing.assert_array_equal(fresh.batch(17), sampler.batch(17))
    np.testing.assert_array_equal(fresh.batch(3), sampler.batch(3))
    assert not np.array_equal(BatchSampler(1000, 64, 6, 300).batch(3), sampler.batch(3))
    # the order is integer arithmetic: these values on every machine (a change here changes every compact model)
    assert sampler.batch(0)[:5].tolist() == [420, 526, 358, 393, 522]
    # a lone last image of an epoch is joined by the epoch's first (BatchNorm cannot train on one)
    lone = BatchSampler(n_images=65, batch_size=64, seed=5, block=300)
    assert lone.batch(1).tolist() == [lone.epoch_order(0, np.array([64]))[0], lone.batch(0)[0]]


def _labelled_pool(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A session dataset, its pool recipe's config, and teacher labels of the pool written as the teacher job does
    (two random teachers' predictions)."""
    rate = np.random.default_rng(0).uniform(1, 5, (2, 40))
    dataset = _session_dataset(tmp_path, rate, 2, "single_trial", image_size=32)
    config = {"images": {"natural": 200, "dots": 60}, "augmented": 60, "other_sessions": 0, "folders": []}
    config["heldout"] = 64
    recipe = pool_recipe(str(dataset), [], config, "s3", seed=0)
    images = recipe.images(np.arange(len(recipe)))
    labels = np.stack([predict(make_teacher(images[:100], seed=seed), images)[:, 0] for seed in (10, 11)])
    path = tmp_path / "teacher.nc"
    with TeacherLabelWriter(path, NEURONS, len(recipe), recipe.heldout_start, {}) as writer:
        for start in range(0, len(recipe), 100):
            writer.write(start, labels[:, start : start + 100])
    return dataset, path, config


def test_a_streamed_pool_gives_the_models_of_the_pool_drawn_in_one_piece(tmp_path: Path) -> None:
    """Images regenerated from the recipe batch by batch and labels read block by block from the label file train
    the same compact models, bit for bit, as the same pool drawn whole into memory; an image cache changes
    nothing."""
    dataset, teacher, config = _labelled_pool(tmp_path)
    recipe = pool_recipe(str(dataset), [], config, "s3", seed=0)
    settings = CompressSettings.from_config(compact_config(steps=80, retrain_steps=20), 0, "s3", "cpu")
    n, heldout = len(recipe), recipe.heldout

    def compress(images: object, labels: object) -> list:
        return compress_neurons(PoolData(images, labels, n, heldout, BLOCK), settings, seed=0, session="s3")

    with TeacherLabels(teacher) as labels:
        streamed = compress(CachedImages(recipe, 0), labels)
        cached = compress(CachedImages(recipe, 2**20), labels)  # holds a part of the pool: the rest regenerated
    whole, neurons, _ = read_teacher_labels(teacher)
    in_memory = compress(ImageArray(recipe.images(np.arange(n))), LabelArray(whole, neurons))
    for run in (cached, in_memory):
        for (model, report), (other, other_report) in zip(streamed, run, strict=True):
            _assert_same_state(model, other)
            assert {k: v for k, v in report.items() if k != "seconds"} == {
                k: v for k, v in other_report.items() if k != "seconds"
            }
    fidelities = [report["fidelity_r2"] for _, report in streamed]
    assert min(fidelities) > 0.05 and max(fidelities) > 0.5  # they learnt (a short run: observed 0.10 and 0.68)


def test_loader_workers_regenerate_the_batches_the_job_would(tmp_path: Path) -> None:
    """On a GPU, loader processes regenerate the coming batches: the same indices and bytes, in the same order."""
    rate = np.random.default_rng(0).uniform(1, 5, (2, 40))
    dataset = _session_dataset(tmp_path, rate, 2, "single_trial", image_size=32)
    config = {"images": {"natural": 150, "dots": 50}, "augmented": 40, "other_sessions": 0, "folders": []}
    recipe = pool_recipe(str(dataset), [], {**config, "heldout": 40}, "s3", seed=0)
    labels = LabelArray(np.zeros((1, len(recipe)), dtype=np.float32), np.array(["n"]))
    sampler = BatchSampler(recipe.heldout_start, 32, seed=1, block=64)
    batches = {}
    for workers in (0, 2):
        data = PoolData(recipe, labels, len(recipe), recipe.heldout, 64, workers=workers)
        batches[workers] = list(data.image_batches(sampler, 9))  # more than an epoch (7 batches)
    assert len(batches[2]) == 9
    for (indices, images), (indices_2, images_2) in zip(batches[0], batches[2], strict=True):
        np.testing.assert_array_equal(indices, indices_2)
        np.testing.assert_array_equal(images, images_2)
        np.testing.assert_array_equal(images, recipe.images(indices))
