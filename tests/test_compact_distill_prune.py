"""Distillation of a known teacher into a compact student, and layer-by-layer pruning (docs/method.md section 4)."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compactcortex.compact.distill import DistillSettings, distill, fidelity_r2, squared_correlation
from compactcortex.compact.prune import PruneSettings, prune, rebuild_with_filters, zeroed_filters
from compactcortex.models.compact import CompactModel, predict

SIZE = 16
N_TRAIN = 18000
N_HELD_OUT = 2000
TEACHER_FILTERS = [4, 4, 3, 3, 3]
STUDENT_FILTERS = [8, 8, 6, 6, 6]
# The random teacher's depthwise kernels are not smooth, so no smoothing here (test_distillation_is_seeded smooths).
DISTILL = DistillSettings(steps=2000, learning_rate=1e-2, smoothing_sigma=0.0, cosine_decay=True, seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_images(n: int, seed: int, size: int = SIZE) -> np.ndarray:
    """Smooth random colour images (bilinearly upsampled noise), uint8 (n, size, size, 3)."""
    rng = np.random.default_rng(seed)
    coarse = torch.as_tensor(rng.normal(size=(n, 3, size // 4, size // 4)))
    smooth = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    pixels = (128 + 50 * smooth).clamp(0, 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def make_teacher(images: np.ndarray, seed: int = 0) -> CompactModel:
    """A random teacher in eval mode: BatchNorm statistics from the images, random BN scales and shifts."""
    torch.manual_seed(seed)
    teacher = CompactModel(TEACHER_FILTERS, image_size=SIZE)
    batchnorms = [m for m in teacher.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in batchnorms:
        m.momentum = None
    teacher.train()(teacher.preprocess(images))
    for m in batchnorms:
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(1.5, 2.5)
    teacher.layers["Beta"].weight.uniform_(0.0, 1.0)
    return teacher.eval()


@pytest.fixture(scope="module")
def distilled() -> dict:
    """The teacher's z-scored labels on train/held-out images, and a student distilled on the training part."""
    images = make_images(N_TRAIN + N_HELD_OUT, seed=1)
    teacher = make_teacher(images[:500])
    labels = predict(teacher, images)
    labels = (labels - labels[:N_TRAIN].mean(axis=0)) / labels[:N_TRAIN].std(axis=0)
    torch.manual_seed(3)
    student = CompactModel(STUDENT_FILTERS, image_size=SIZE)
    history = distill(student, images[:N_TRAIN], labels[:N_TRAIN], DISTILL)
    return {"images": images, "labels": labels, "student": student, "history": history}


def _eval_model(filters: list[int], seed: int) -> CompactModel:
    """A random float64 two-output model in eval mode, BatchNorm statistics from images, random BN affines."""
    torch.manual_seed(seed)
    model = CompactModel(filters, image_size=SIZE, n_outputs=2).double()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in batchnorms:
            m.momentum = None
        model.train()(model.preprocess(make_images(64, seed=100 + seed)))
        for m in batchnorms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.5)
    return model.eval()


def test_distilled_student_recovers_the_teacher(distilled: dict) -> None:
    history = distilled["history"]
    assert history["steps"] == DISTILL.steps and len(history["loss"]) == DISTILL.steps
    assert np.mean(history["loss"][-20:]) < 0.5 * np.mean(history["loss"][:20])
    r2 = fidelity_r2(distilled["student"], distilled["images"][N_TRAIN:], distilled["labels"][N_TRAIN:])
    assert r2.shape == (1,)
    assert r2[0] >= 0.9, r2


def test_distillation_is_seeded() -> None:
    images = make_images(128, seed=5)
    targets = np.random.default_rng(0).normal(size=(128, 1))
    settings = DistillSettings(steps=5, batch_size=32, learning_rate=1e-3, smoothing_every=2, seed=7)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        student = CompactModel([3, 3, 3, 3, 3], image_size=SIZE)
        runs.append((distill(student, images, targets, settings)["loss"], predict(student, images)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_pruning_keeps_floor_and_fidelity(distilled: dict) -> None:
    student = distilled["student"]
    probe = slice(0, 300)
    pruned, report = prune(student, distilled["images"][probe], distilled["labels"][probe], PruneSettings())
    assert report["filters_before"] == STUDENT_FILTERS
    assert list(pruned.filters) == report["filters_after"] == [len(k) for k in report["kept"]]
    assert all(f >= 3 for f in report["filters_after"])
    assert report["fidelity_after"] >= 0.9 * report["fidelity_before"] - 1e-9
    assert report["parameters_after"] == pruned.n_parameters() <= report["parameters_before"] == student.n_parameters()
    again = fidelity_r2(pruned, distilled["images"][probe], distilled["labels"][probe])[0]
    assert again == pytest.approx(report["fidelity_after"], abs=1e-9)
    assert list(student.filters) == STUDENT_FILTERS  # the input model is untouched


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rebuild_equals_zeroing(seed: int) -> None:
    filters = [6, 5, 5, 4, 5]
    model = _eval_model(filters, seed)
    rng = np.random.default_rng(seed)
    kept = [sorted(rng.choice(f, size=rng.integers(1, f + 1), replace=False).tolist()) for f in filters]
    x = model.preprocess(make_images(16, seed=10 + seed))
    with torch.no_grad(), ExitStack() as stack:
        for layer, indices in enumerate(kept):
            stack.enter_context(zeroed_filters(model, layer, indices))
        expected = model(x)
    rebuilt = rebuild_with_filters(model, kept)
    assert list(rebuilt.filters) == [len(k) for k in kept]
    with torch.no_grad():
        got = rebuilt(x)
        full = model(x)
    assert not torch.allclose(full, expected)  # zeroing changes something, so the check has teeth
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_rebuild_rejects_bad_indices() -> None:
    model = _eval_model([3, 3, 3, 3, 3], 0)
    with pytest.raises(ValueError):
        rebuild_with_filters(model, [[0], [0], [0], [0]])
    with pytest.raises(ValueError):
        rebuild_with_filters(model, [[0], [0], [0], [0], [3]])
    with pytest.raises(ValueError):
        rebuild_with_filters(model, [[0, 0], [0], [0], [0], [0]])


def test_pruning_removes_exactly_the_dead_filters() -> None:
    filters = [6, 6, 5, 5, 6]
    dead = {0: [1, 4], 1: [0], 2: [2, 3], 3: [], 4: [0, 5]}
    model = _eval_model(filters, seed=4)
    with torch.no_grad():
        for layer, indices in dead.items():
            bn = model.layers[f"layer{layer}_bn"]
            bn.weight[indices] = 0.0
            bn.bias[indices] = -1.0  # post-ReLU map identically zero
    images = make_images(64, seed=3)
    targets = predict(model, images) + np.random.default_rng(0).normal(scale=0.1, size=(64, 2))
    settings = PruneSettings(variance_fraction=1.0, fidelity_fraction=1.0, min_filters=3)
    pruned, report = prune(model, images, targets, settings)
    for layer, n_filters in enumerate(filters):
        assert report["kept"][layer] == [i for i in range(n_filters) if i not in dead[layer]]
    assert report["fidelity_after"] == pytest.approx(report["fidelity_before"], abs=1e-9)
    np.testing.assert_allclose(predict(pruned, images), predict(model, images), atol=1e-8)


def test_squared_correlation_of_a_column_does_not_depend_on_its_neighbours() -> None:
    """A strided column is summed in another order than a contiguous one (its last bit would depend on how many
    columns share the array); each column's r^2 must equal the r^2 of that column alone, exactly."""
    rng = np.random.default_rng(5)
    predictions, targets = rng.normal(size=(1001, 3)), rng.normal(size=(1001, 3))
    targets[:, 1] += predictions[:, 1]
    together = squared_correlation(predictions, targets)
    for column in range(3):
        alone = squared_correlation(predictions[:, column].copy(), targets[:, column].copy())
        assert together[column] == alone[0]
    assert squared_correlation(predictions[:, :1], np.ones((1001, 1)))[0] == 0.0  # constant: undefined -> 0
