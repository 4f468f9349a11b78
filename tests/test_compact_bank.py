"""A bank of compact students trained as one network computes and learns what its students do one by one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from compactcortex.compact.distill import DistillSettings, distill, per_output_mse
from compactcortex.models.compact import N_LAYERS, CompactModel, predict
from compactcortex.models.compact_bank import StudentBank
from tests.test_compact_distill_prune import make_images

SIZE = 16
EQUAL_FILTERS = [[4, 4, 3, 3, 3]] * 3
# after pruning: the first student is as wide as the bank in every layer, the others are padded
MIXED_FILTERS = [[4, 4, 3, 3, 3], [3, 2, 3, 2, 2], [2, 3, 2, 3, 1]]
N_TRAIN = 400
N_HELD_OUT = 100


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_students(filters: list[list[int]], dtype: torch.dtype = torch.float32) -> list[CompactModel]:
    """Students initialised with seeds 0, 1, ... (PyTorch's default initialisation)."""
    students = []
    for seed, student_filters in enumerate(filters):
        torch.manual_seed(seed)
        students.append(CompactModel(student_filters, image_size=SIZE).to(dtype))
    return students


@torch.no_grad()
def randomise_batchnorm_(students: list[CompactModel], seed: int = 0) -> None:
    """Non-trivial BatchNorm affines and running statistics, so eval mode differs from train mode."""
    generator = torch.Generator().manual_seed(seed)
    for student in students:
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                shape, dtype = m.weight.shape, m.weight.dtype
                m.weight.copy_(0.5 + torch.rand(shape, generator=generator, dtype=dtype))
                m.bias.copy_(-0.2 + 0.7 * torch.rand(shape, generator=generator, dtype=dtype))
                m.running_mean.copy_(50 * torch.randn(shape, generator=generator, dtype=dtype))
                m.running_var.copy_(100 + 1000 * torch.rand(shape, generator=generator, dtype=dtype))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    """Images and three z-scored targets: the outputs of a random three-output teacher."""
    images = make_images(N_TRAIN + N_HELD_OUT, seed=1, size=SIZE)
    torch.manual_seed(10)
    teacher = CompactModel([3, 3, 3, 3, 3], image_size=SIZE, n_outputs=3)
    with torch.no_grad():
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        teacher.train()(teacher.preprocess(images[:200]))
    labels = predict(teacher, images)
    labels = (labels - labels[:N_TRAIN].mean(axis=0)) / labels[:N_TRAIN].std(axis=0)
    return {"images": images, "labels": labels}


@pytest.mark.parametrize("filters", [EQUAL_FILTERS, MIXED_FILTERS], ids=["equal", "mixed"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_bank_forward_equals_students(filters: list[list[int]], training: bool) -> None:
    students = make_students(filters)
    randomise_batchnorm_(students)
    bank = StudentBank.from_students(students)
    assert bank.n_outputs == len(filters) and bank.image_size == SIZE and bank.map_size == SIZE // 4
    assert bank.filters == tuple(max(f[k] for f in filters) for k in range(N_LAYERS))
    x = bank.preprocess(make_images(12, seed=2, size=SIZE))
    torch.testing.assert_close(x, students[0].preprocess(make_images(12, seed=2, size=SIZE)), rtol=0, atol=0)
    bank.train(training)
    for student in students:
        student.train(training)
    with torch.no_grad():
        got = bank(x)
        expected = torch.cat([student(x) for student in students], dim=1)
    assert got.shape == (12, len(filters))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if training:  # the batch statistics moved every running average, the bank's as its students'
        for got_student, student in zip(bank.to_students(), students, strict=True):
            for (name, value), (_, reference) in zip(
                got_student.state_dict().items(), student.state_dict().items(), strict=True
            ):
                torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("training", [False, True])
def test_to_students_round_trips_exactly(training: bool) -> None:
    students = make_students(MIXED_FILTERS, dtype=torch.float64)
    randomise_batchnorm_(students)
    for student in students:
        student.layers["layer2_bn"].num_batches_tracked.fill_(7)
        student.train(training)
    bank = StudentBank.from_students(students)
    assert bank.training == training and next(bank.parameters()).dtype == torch.float64
    back = bank.to_students()
    for got, student in zip(back, students, strict=True):
        assert got.filters == student.filters and got.config() == student.config()
        assert got.training == training
        assert got.state_dict().keys() == student.state_dict().keys()
        for name, value in student.state_dict().items():
            assert torch.equal(got.state_dict()[name], value), name
        assert got is not student


def test_padded_weights_are_zero_and_masked() -> None:
    bank = StudentBank.from_students(make_students(MIXED_FILTERS))
    names = {name for name, _ in bank.named_parameters()}
    assert _padded_parts(bank).keys() == names - {"layers.Beta.bias"}  # every layer of MIXED_FILTERS is padded
    for k in range(N_LAYERS):
        mask = bank.mask(k).view(len(MIXED_FILTERS), -1)
        assert mask.sum(dim=1).tolist() == [f[k] for f in MIXED_FILTERS]
    for name, value in _padded_parts(bank).items():
        assert torch.count_nonzero(value) == 0, name


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_masks_silence_padded_channels(training: bool) -> None:
    """Even with non-zero padded weights, BatchNorm scales and shifts, the padded channels contribute nothing."""
    students = make_students(MIXED_FILTERS)
    randomise_batchnorm_(students)
    bank = StudentBank.from_students(students).train(training)
    real = _real_entries(bank)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in bank.named_parameters():  # padded weights, BN scales and shifts: non-zero
            noise = 1 + torch.rand(parameter.shape, generator=generator)
            parameter.copy_(torch.where(real[name], parameter, noise))
    x = bank.preprocess(make_images(8, seed=4, size=SIZE))
    with torch.no_grad():
        expected = torch.cat([student.train(training)(x) for student in students], dim=1)
        torch.testing.assert_close(bank(x), expected, rtol=1e-5, atol=1e-5)


def test_gradients_equal_the_students() -> None:
    """One backward pass of per_output_mse: each student's part of the bank's gradient is its own gradient."""
    students = make_students(MIXED_FILTERS)
    bank = StudentBank.from_students(students)
    x = bank.preprocess(make_images(16, seed=3, size=SIZE))
    y = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    per_output_mse(bank.train()(x), y).backward()
    for i, student in enumerate(students):
        per_output_mse(student.train()(x), y[:, i : i + 1]).backward()
    gradients = copy.deepcopy(students)
    for gradient, student in zip(gradients, students, strict=True):
        for target, parameter in zip(gradient.parameters(), student.parameters(), strict=True):
            target.data.copy_(parameter.grad)
    expected = dict(StudentBank.from_students(gradients).named_parameters())
    for name, parameter in bank.named_parameters():
        # pre-BatchNorm conv biases: mathematically zero gradients, float noise of ~1e-6
        torch.testing.assert_close(parameter.grad, expected[name], rtol=1e-4, atol=1e-5, msg=name)


def _train(filters: list[list[int]], data: dict, settings: DistillSettings, dtype: torch.dtype) -> dict:
    """The same initial students distilled one by one, and as a bank."""
    images, labels = data["images"][:N_TRAIN], data["labels"][:N_TRAIN]
    singles = make_students(filters, dtype)
    bank = StudentBank.from_students(singles)  # copies the weights before the singles train
    for i, student in enumerate(singles):
        distill(student, images, labels[:, i], settings)
    history = distill(bank, images, labels, settings)
    held_out = data["images"][N_TRAIN:]
    return {
        "bank": bank,
        "history": history,
        "single": np.concatenate([predict(student, held_out) for student in singles], axis=1),
        "bank_prediction": predict(bank, held_out),
        "back": np.concatenate([predict(student, held_out) for student in bank.to_students()], axis=1),
    }


@pytest.fixture(scope="module")
def trained_float64(data: dict) -> dict:
    settings = DistillSettings(
        steps=60, batch_size=32, learning_rate=1e-2, smoothing_sigma=0.5, smoothing_every=20, seed=0
    )
    return _train(MIXED_FILTERS, data, settings, torch.float64)


def test_training_as_a_bank_equals_one_by_one_float64(trained_float64: dict, data: dict) -> None:
    """In float64 the bank follows the one-by-one trajectories to rounding (observed ~1e-14 after 60 steps)."""
    run = trained_float64
    assert run["history"]["steps"] == 60
    assert np.mean(run["history"]["loss"][-10:]) < np.mean(run["history"]["loss"][:10])  # it learns
    sd = data["labels"][N_TRAIN:].std(axis=0)
    np.testing.assert_allclose(run["back"], run["single"], rtol=0, atol=1e-9 * sd.max())
    np.testing.assert_allclose(run["bank_prediction"], run["back"], rtol=0, atol=1e-12)
    for i in range(3):
        assert np.corrcoef(run["back"][:, i], run["single"][:, i])[0, 1] > 0.999999


def test_training_as_a_bank_equals_one_by_one_float32(data: dict) -> None:
    """float32, a short run (10 steps): agreement to ~1e-5 of the targets' sd (observed 2.5e-6).

    Longer float32 runs drift apart: the conv biases in front of BatchNorm have zero gradient up to rounding, which
    Adam turns into +-lr steps, and after a few tens of steps the trajectories separate chaotically. The same happens
    between float32 and float64 runs of one student alone, so it is not the bank's doing; the float64 test checks
    the long run.
    """
    settings = DistillSettings(
        steps=10, batch_size=32, learning_rate=3e-3, smoothing_sigma=0.5, smoothing_every=5, seed=0
    )
    run = _train(MIXED_FILTERS, data, settings, torch.float32)
    sd = data["labels"][N_TRAIN:].std(axis=0)
    np.testing.assert_allclose(run["back"], run["single"], rtol=0, atol=1e-4 * sd.max())
    for i in range(3):
        assert np.corrcoef(run["back"][:, i], run["single"][:, i])[0, 1] > 0.9999


def test_padded_channels_stay_zero_after_training(trained_float64: dict, data: dict) -> None:
    bank = trained_float64["bank"]
    for name, value in _padded_parts(bank).items():
        assert torch.count_nonzero(value) == 0, name
    with torch.no_grad():
        outputs = bank.layer_outputs(bank.preprocess(data["images"][N_TRAIN:]))
    for k, maps in enumerate(outputs):
        padded = bank.mask(k) == 0
        assert padded.any()  # every layer of MIXED_FILTERS has padding
        assert torch.count_nonzero(maps[:, padded]) == 0, k
    back = bank.to_students()
    assert [list(student.filters) for student in back] == MIXED_FILTERS
    assert all(student.n_outputs == 1 and not student.training for student in back)


def _real_entries(bank: StudentBank) -> dict[str, torch.Tensor]:
    """Per bank parameter, True where it belongs to a real filter (of students with the bank's filter counts)."""
    ones = [CompactModel(filters, image_size=bank.image_size) for filters in bank.student_filters]
    with torch.no_grad():
        for student in ones:
            for parameter in student.parameters():
                parameter.fill_(1)
    return {name: value == 1 for name, value in StudentBank.from_students(ones).named_parameters()}


def _padded_parts(bank: StudentBank) -> dict[str, torch.Tensor]:
    """Every bank parameter entry that belongs to no real filter (a padded input or output channel)."""
    real = _real_entries(bank)
    return {name: value[~real[name]] for name, value in bank.named_parameters() if not real[name].all()}


def test_bad_students_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one student"):
        StudentBank.from_students([])
    with pytest.raises(ValueError, match="image_size"):
        StudentBank.from_students([CompactModel([2] * 5, image_size=16), CompactModel([2] * 5, image_size=20)])
    with pytest.raises(ValueError, match="single-output"):
        StudentBank.from_students([CompactModel([2] * 5, image_size=16, n_outputs=2)])
    with pytest.raises(ValueError, match="means"):
        StudentBank.from_students(
            [CompactModel([2] * 5, image_size=16), CompactModel([2] * 5, image_size=16, means=(0, 0, 0))]
        )
    with pytest.raises(ValueError, match="expected input"):
        StudentBank.from_students([CompactModel([2] * 5, image_size=16)])(torch.zeros(1, 3, 20, 20))
