"""Image synthesis on compact models (docs/method.md section 5): differentiable preprocessing, a bank fed one image per
student, maximizing/minimizing images and adversarial perturbations of known random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compactcortex.models.compact import CompactModel, gaussian_kernel_1d, predict, prepare_pixels
from compactcortex.models.compact_bank import StudentBank
from compactcortex.pool import PoolRecipe
from compactcortex.synthesis.images import (
    PIXEL_MAX,
    AdversarialSettings,
    SynthesisSettings,
    adversarial,
    as_bank,
    bank_responses,
    blur,
    perturbation_size,
    synthesize,
    white_noise,
)
from compactcortex.synthesis.stimulus_set import StimulusDesign, control_indices, most_driving_natural, neuron_stimuli
from tests.test_compact_bank import make_students, randomise_batchnorm_
from tests.test_compact_distill_prune import make_images

SIZE = 16  # the models' image size
STIMULUS = 32  # the session's image size: synthesis works on these pixels, the models see them resized
NOISE_STD = 40.0
PRUNED_FILTERS = [[8, 8, 6, 5, 3], [8, 7, 8, 4, 4], [6, 8, 8, 8, 2]]
NEURON_FILTERS = [[4, 4, 3, 3, 3], [3, 4, 2, 3, 2]]
N_RANDOM = 500
SYNTHESIS = SynthesisSettings(steps=40, step_size=10.0, gradient_sigma=1.0, smooth_every=20, smooth_sigma=0.5)
SYNTHESIS_DIRECTION = torch.tensor([1.0, 1.0, -1.0, -1.0])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@torch.no_grad()
def make_neuron(filters: list[int], seed: int) -> CompactModel:
    """A random float64 model in eval mode that responds to images: BatchNorm statistics from white noise at the
    stimulus size, random positive BatchNorm scales and shifts (so most units are active)."""
    torch.manual_seed(seed)
    model = CompactModel(filters, image_size=SIZE).double()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in batchnorms:
        m.momentum = None  # a cumulative average: the statistics of the whole calibration batch
    pixels = torch.as_tensor(white_noise(np.random.default_rng(100 + seed), 200, STIMULUS, NOISE_STD))
    model.train()(model.prepare(pixels))
    for m in batchnorms:
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(0.0, 1.0)
    return model.eval()


def per_neuron_noise(seed: int, n_images: int, n_neurons: int, size: int = STIMULUS) -> torch.Tensor:
    """(n_images, n_neurons, 3, size, size) white-noise pixels, one draw per neuron."""
    noise = white_noise(np.random.default_rng(seed), n_images * n_neurons, size, NOISE_STD)
    return torch.as_tensor(noise).view(n_images, n_neurons, 3, size, size)


@pytest.fixture(scope="module")
def bank() -> StudentBank:
    return as_bank([make_neuron(filters, seed) for seed, filters in enumerate(NEURON_FILTERS)])


@pytest.fixture(scope="module")
def random_responses(bank: StudentBank) -> torch.Tensor:
    """(3 * N_RANDOM, N) responses to natural-like random images: white noise, uniform noise, smooth images."""
    n = bank.n_outputs
    rng = np.random.default_rng(11)
    uniform = torch.as_tensor(rng.uniform(0, PIXEL_MAX, (N_RANDOM, n, 3, STIMULUS, STIMULUS)))
    smooth = torch.as_tensor(make_images(N_RANDOM * n, seed=12, size=STIMULUS)).double().permute(0, 3, 1, 2)
    batches = [per_neuron_noise(10, N_RANDOM, n), uniform, smooth.reshape(N_RANDOM, n, 3, STIMULUS, STIMULUS)]
    with torch.no_grad():
        return torch.cat([bank_responses(bank, pixels) for pixels in batches])


@pytest.fixture(scope="module")
def synthesised(bank: StudentBank) -> dict[str, torch.Tensor]:
    start = per_neuron_noise(1, len(SYNTHESIS_DIRECTION), bank.n_outputs)
    images, responses = synthesize(bank, start.clone(), SYNTHESIS_DIRECTION, SYNTHESIS)
    return {"start": start, "images": images, "responses": responses}


# --- CompactModel.prepare ---


@pytest.mark.parametrize("image_size", [32, 64, 8], ids=["same size", "64 to 32", "8 to 32"])
def test_prepare_on_float_pixels_equals_preprocess_on_uint8(image_size: int) -> None:
    images = make_images(6, seed=3, size=image_size)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2)
    torch.manual_seed(0)
    model = CompactModel([2, 2, 2, 2, 2], image_size=32).double()
    expected = model.preprocess(images)
    got = model.prepare(pixels.double())
    assert got.shape == expected.shape == (6, 3, 32, 32) and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(model.prepare(pixels.double().contiguous()), expected, rtol=0, atol=1e-10)
    # a float32 model computes prepare in float32; preprocess in float64, then casts
    model32 = CompactModel([2, 2, 2, 2, 2], image_size=32)
    got32 = model32.prepare(pixels.float())
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32, model32.preprocess(images), rtol=0, atol=1e-3)


@pytest.mark.parametrize("image_size", [32, 64], ids=["same size", "64 to 32"])
def test_gradients_flow_through_prepare(image_size: int) -> None:
    torch.manual_seed(0)
    model = CompactModel([3, 3, 3, 3, 3], image_size=32).double().eval()
    pixels = torch.as_tensor(white_noise(np.random.default_rng(0), 4, image_size, NOISE_STD)).requires_grad_(True)
    model(model.prepare(pixels)).sum().backward()
    assert pixels.grad is not None and pixels.grad.shape == pixels.shape
    assert torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [8, 12, 2], ids=["same size", "shrink", "enlarge"])
def test_prepare_gradient_is_exact(size: int) -> None:
    pixels = torch.rand(2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pixels = (255 * pixels).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: prepare_pixels(p, 8, (1.0, 2.0, 3.0)), (pixels,))


def test_prepare_refuses_non_square_or_channels_last_pixels() -> None:
    model = CompactModel([2, 2, 2, 2, 2], image_size=16)
    with pytest.raises(ValueError, match="square float pixels"):
        model.prepare(torch.zeros(1, 3, 16, 20))
    with pytest.raises(ValueError, match="square float pixels"):
        model.prepare(torch.zeros(1, 16, 16, 3))


# --- StudentBank on one image per student ---


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_bank_on_an_image_per_student_equals_each_student_on_its_own(training: bool) -> None:
    students = make_students(PRUNED_FILTERS, dtype=torch.float64)
    randomise_batchnorm_(students)
    for student in students:
        student.train(training)
    bank = StudentBank.from_students(students)
    assert bank.training == training
    n = len(students)
    x5d = bank.prepare(per_neuron_noise(2, 5, n, size=SIZE).flatten(0, 1)).unflatten(0, (5, n))
    with torch.no_grad():
        got = bank(x5d)
        maps = bank.layer_outputs(x5d)
        assert got.shape == (5, n)
        for i, student in enumerate(students):
            torch.testing.assert_close(got[:, i], student(x5d[:, i])[:, 0], rtol=0, atol=1e-10)
            for k, student_map in enumerate(student.layer_outputs(x5d[:, i])):
                width, f = bank.filters[k], student.filters[k]
                block = maps[k][:, i * width : (i + 1) * width]
                torch.testing.assert_close(block[:, :f], student_map, rtol=0, atol=1e-10)
                assert torch.count_nonzero(block[:, f:]) == 0  # padded channels


def test_bank_on_a_shared_image_is_unchanged() -> None:
    students = make_students(PRUNED_FILTERS, dtype=torch.float64)
    randomise_batchnorm_(students)
    bank = StudentBank.from_students(students).eval()
    x4d = bank.preprocess(make_images(6, seed=5, size=SIZE))
    with torch.no_grad():
        got = bank(x4d)
        expected = torch.cat([student.eval()(x4d) for student in students], dim=1)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
        # the same image given to every student through the 5-D path
        shared = x4d.unsqueeze(1).expand(-1, len(students), -1, -1, -1)
        torch.testing.assert_close(bank(shared), got, rtol=0, atol=1e-10)


def test_bank_refuses_an_image_per_student_of_the_wrong_count() -> None:
    bank = StudentBank.from_students(make_students(PRUNED_FILTERS))
    with pytest.raises(ValueError, match="expected input"):
        bank(torch.zeros(2, 2, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="expected input"):
        bank(torch.zeros(2, 3, 3, SIZE + 4, SIZE + 4))


# --- helpers ---


def test_as_bank_is_eval_mode_without_weight_gradients() -> None:
    model = make_neuron(NEURON_FILTERS[0], seed=0).train()
    bank = as_bank([model])
    assert isinstance(bank, StudentBank) and bank.n_outputs == 1 and not bank.training
    assert not any(parameter.requires_grad for parameter in bank.parameters())
    assert as_bank(bank) is bank
    pixels = per_neuron_noise(3, 4, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            bank_responses(bank, pixels), model.eval()(model.prepare(pixels[:, 0])), rtol=0, atol=1e-10
        )


def test_white_noise_is_seeded_grey_noise_within_the_pixel_range() -> None:
    noise = white_noise(np.random.default_rng(0), 50, 16, NOISE_STD)
    assert noise.shape == (50, 3, 16, 16)
    assert noise.min() >= 0 and noise.max() <= PIXEL_MAX
    assert abs(noise.mean() - PIXEL_MAX / 2) < 1 and abs(noise.std() - NOISE_STD) < 2
    np.testing.assert_array_equal(noise, white_noise(np.random.default_rng(0), 50, 16, NOISE_STD))


def test_blur_keeps_a_constant_image_constant() -> None:
    constant = torch.full((2, 3, 3, 12, 10), 77.0, dtype=torch.float64)
    torch.testing.assert_close(blur(constant, 1.5), constant, rtol=0, atol=1e-10)


def test_blur_with_sigma_zero_returns_the_input() -> None:
    pixels = torch.rand(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(blur(pixels, 0.0), pixels)


@pytest.mark.parametrize("shape", [(4, 2, 3, 16, 16), (3, 16, 12), (1, 1, 3, 9, 9)])
def test_blur_keeps_the_shape(shape: tuple[int, ...]) -> None:
    pixels = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    blurred = blur(pixels, 1.0)
    assert blurred.shape == pixels.shape and blurred.dtype == pixels.dtype
    assert blurred.std() < pixels.std()  # it smooths


def test_blur_spreads_a_point_into_a_separable_gaussian() -> None:
    pixels = torch.zeros(1, 2, 3, 15, 15, dtype=torch.float64)
    pixels[0, 1, 2, 7, 7] = 1.0
    sigma = 1.0
    kernel = gaussian_kernel_1d(sigma)
    radius = kernel.numel() // 2
    expected = torch.zeros_like(pixels)
    expected[0, 1, 2, 7 - radius : 8 + radius, 7 - radius : 8 + radius] = torch.outer(kernel, kernel)
    torch.testing.assert_close(blur(pixels, sigma), expected, rtol=0, atol=1e-12)


def test_perturbation_size_known_values() -> None:
    sources = torch.zeros(2, 1, 3, 4, 4)
    images = sources.clone()
    images[0, 0, 0, 1, 1], images[0, 0, 2, 3, 0] = 3.0, -4.0
    images[1, 0, 1, 2, 2] = 2.0
    torch.testing.assert_close(perturbation_size(images, sources, "linf"), torch.tensor([[4.0], [2.0]]))
    torch.testing.assert_close(perturbation_size(images, sources, "l2"), torch.tensor([[5.0], [2.0]]))


# --- synthesis ---


def test_maximizing_images_beat_every_random_image(synthesised: dict, random_responses: torch.Tensor) -> None:
    responses = synthesised["responses"]
    assert responses.shape == (4, len(NEURON_FILTERS))
    assert (responses[:2] > random_responses.max(dim=0).values).all()


def test_minimizing_images_fall_below_every_random_image(synthesised: dict, random_responses: torch.Tensor) -> None:
    assert (synthesised["responses"][2:] < random_responses.min(dim=0).values).all()


def test_synthesis_returns_the_responses_of_its_images(bank: StudentBank, synthesised: dict) -> None:
    images = synthesised["images"]
    assert images.shape == synthesised["start"].shape and images.dtype == torch.float64
    assert not images.requires_grad and not synthesised["responses"].requires_grad
    assert images.min() >= 0 and images.max() <= PIXEL_MAX
    with torch.no_grad():
        torch.testing.assert_close(bank_responses(bank, images), synthesised["responses"], rtol=0, atol=1e-8)
        start = bank_responses(bank, synthesised["start"])
    # better than where it started, in each image's own direction
    assert ((synthesised["responses"] - start) * SYNTHESIS_DIRECTION.view(-1, 1) > 0).all()


def test_synthesis_is_deterministic(bank: StudentBank, synthesised: dict) -> None:
    images, responses = synthesize(bank, synthesised["start"].clone(), SYNTHESIS_DIRECTION, SYNTHESIS)
    assert torch.equal(images, synthesised["images"]) and torch.equal(responses, synthesised["responses"])


def test_synthesis_with_no_steps_worth_taking_keeps_the_start(bank: StudentBank) -> None:
    """One step of size ~0: the best image is the start itself or a pixel-identical one."""
    start = per_neuron_noise(4, 2, bank.n_outputs)
    settings = SynthesisSettings(steps=1, step_size=1e-12, gradient_sigma=0.0, smooth_every=10)
    images, responses = synthesize(bank, start.clone(), torch.tensor([1.0, -1.0]), settings)
    torch.testing.assert_close(images, start, rtol=0, atol=1e-9)
    with torch.no_grad():
        torch.testing.assert_close(responses, bank_responses(bank, start), rtol=0, atol=1e-8)


def test_synthesis_refuses_mismatched_shapes(bank: StudentBank) -> None:
    start = per_neuron_noise(5, 2, bank.n_outputs)
    with pytest.raises(ValueError, match="do not fit"):
        synthesize(bank, start, torch.tensor([1.0, 1.0, -1.0]), SYNTHESIS)
    with pytest.raises(ValueError, match="do not fit"):
        synthesize(bank, start[:, :1], torch.tensor([1.0, -1.0]), SYNTHESIS)


# --- adversarial images ---


@pytest.mark.parametrize(("norm", "budget"), [("linf", 8.0), ("l2", 200.0)])
def test_adversarial_images_move_the_response_within_the_budget(bank: StudentBank, norm: str, budget: float) -> None:
    n = bank.n_outputs
    sources = per_neuron_noise(2, 6, n).round()
    direction = torch.tensor([1.0, -1.0] * 3)
    settings = AdversarialSettings(norm=norm, budget=budget, steps=20)
    images, responses = adversarial(bank, sources, direction, settings)
    assert images.shape == sources.shape and responses.shape == (6, n)
    assert torch.equal(images, images.round())  # pixel values, as shown to the neuron
    assert images.min() >= 0 and images.max() <= PIXEL_MAX
    size = perturbation_size(images, sources, norm)
    assert (size <= budget + 1e-9).all()
    assert (size > 0).all()
    with torch.no_grad():
        torch.testing.assert_close(bank_responses(bank, images), responses, rtol=0, atol=1e-10)
        change = responses - bank_responses(bank, sources)
    assert (change * direction.view(-1, 1) > 0).all(), change


def test_adversarial_l2_perturbation_is_shrunk_until_rounding_fits(bank: StudentBank) -> None:
    """A budget of a few pixels: rounding a perturbation of that length can overshoot; the result never does."""
    sources = per_neuron_noise(6, 4, bank.n_outputs).round()
    settings = AdversarialSettings(norm="l2", budget=3.3, steps=5)
    images, _ = adversarial(bank, sources, torch.tensor([1.0, -1.0, 1.0, -1.0]), settings)
    assert torch.equal(images, images.round())
    assert (perturbation_size(images, sources, "l2") <= 3.3 + 1e-9).all()


def test_adversarial_is_deterministic(bank: StudentBank) -> None:
    sources = per_neuron_noise(7, 2, bank.n_outputs).round()
    settings = AdversarialSettings(norm="linf", budget=4.0, steps=5)
    first = adversarial(bank, sources, torch.tensor([1.0, -1.0]), settings)
    second = adversarial(bank, sources, torch.tensor([1.0, -1.0]), settings)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_adversarial_refuses_a_wrong_direction(bank: StudentBank) -> None:
    with pytest.raises(ValueError, match="direction"):
        adversarial(bank, per_neuron_noise(8, 2, bank.n_outputs).round(), torch.ones(3), AdversarialSettings())


# --- settings ---


@pytest.mark.parametrize(
    "kwargs",
    [{"steps": 0}, {"smooth_every": 0}, {"step_size": 0.0}, {"gradient_sigma": -1.0}, {"smooth_sigma": -0.5}],
)
def test_bad_synthesis_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SynthesisSettings(**kwargs)


@pytest.mark.parametrize("kwargs", [{"norm": "l1"}, {"budget": 0.0}, {"steps": 0}])
def test_bad_adversarial_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AdversarialSettings(**kwargs)


def test_a_neurons_stimuli_and_their_order_do_not_depend_on_its_chunk() -> None:
    """The stimulus set concatenates the chunks' rows: each neuron's rows together, in neuron order, so the set (and
    the closed loop's noise draws, which follow its order) is the same however the neurons are split into jobs."""
    models = [make_neuron(filters, seed) for seed, filters in enumerate(PRUNED_FILTERS)]
    neurons = ["n0", "n1", "n2"]
    pool = small_pool()
    design = small_design()
    together = neuron_stimuli(models, neurons, pool, design, seed=1)
    split = neuron_stimuli(models[:2], neurons[:2], pool, design, seed=1) + neuron_stimuli(
        models[2:], neurons[2:], pool, design, seed=1
    )
    assert [row["image"] for row in together] == [row["image"] for row in split]
    assert [row["neuron"] for row in together] == sorted(row["neuron"] for row in together)
    for a, b in zip(together, split, strict=True):
        assert np.array_equal(a["pixels"], b["pixels"]) and a["predicted"] == b["predicted"]


def small_design() -> StimulusDesign:
    """Two starts, 5 synthesis and 3 adversarial steps, one neuron at a time: a stimulus set made in a second."""
    return StimulusDesign(
        starts=2,
        natural_top=2,
        natural_search=1000,
        controls=6,
        adversarial_sources=1,
        synthesis=SynthesisSettings(steps=5, smooth_every=5),
        adversarial=AdversarialSettings(steps=3),
        batched=False,
        device="cpu",
    )


def small_pool() -> PoolRecipe:
    empty = np.empty((0, STIMULUS, STIMULUS, 3), dtype=np.uint8)
    return PoolRecipe(
        seed=3, session="s9", image_size=STIMULUS, counts={"natural": 30, "gaudy": 10}, augmented=0,
        fit_images=empty, other_sessions=0, other_images=empty, folders=[], heldout=20,
    )  # fmt: skip


def test_controls_are_the_first_held_out_natural_images_of_the_pool() -> None:
    pool = small_pool()
    controls = control_indices(pool, 6)
    heldout = np.arange(pool.heldout_start, len(pool))
    assert controls.tolist() == heldout[pool.image_types(heldout) == "natural"][:6].tolist()
    with pytest.raises(ValueError, match=r"holds \d+ natural images; synthesis.controls asks for 25"):
        control_indices(pool, 25)


def test_the_most_driving_natural_images_are_found_by_streaming_as_by_sorting_them_all() -> None:
    models = [make_neuron(filters, seed) for seed, filters in enumerate(PRUNED_FILTERS)]
    pool = small_pool()
    natural = pool.natural_indices(0, len(pool))
    streamed = most_driving_natural(models, pool, n_search=1000, top=4, batch_size=7)
    for model, (indices, predicted) in zip(models, streamed, strict=True):
        everything = predict(model, pool.images(natural))[:, 0]
        order = np.argsort(-everything, kind="stable")[:4]
        assert indices.tolist() == natural[order].tolist()
        np.testing.assert_allclose(predicted, everything[order], rtol=1e-6)
    # the search can be limited to the pool's first indices (a random sample: the pool's order is shuffled)
    first = most_driving_natural(models[:1], pool, n_search=10, top=2, batch_size=7)[0][0]
    assert set(first) <= set(natural[natural < 10].tolist())
    with pytest.raises(ValueError, match="fewer than synthesis.natural_top = 5"):
        most_driving_natural(models[:1], pool, n_search=3, top=5)
