"""Progress lines in the jobs' logs (``compactcortex.progress``): at a steady interval, the first and the last always,
with the rate, what the loop reports and the time left; and the long loops of the pipeline report through it."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from compactcortex import progress as progress_module
from compactcortex.compact import distill as distill_module
from compactcortex.compact.distill import DistillSettings, distill_pool
from compactcortex.compact.stream import ImageArray, LabelArray, PoolData
from compactcortex.jobs import compact as compact_jobs
from compactcortex.models.compact import CompactModel
from compactcortex.models.compact_bank import StudentBank
from compactcortex.progress import Progress, duration, rate_text
from compactcortex.synthesis.stimulus_set import neuron_stimuli
from tests.test_compact_distill_prune import make_images
from tests.test_synthesis import PRUNED_FILTERS, make_neuron, small_design, small_pool

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Lines(Sequence[str]):
    """The messages logged so far (a live view of caplog's)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self.caplog.messages[index]

    def __len__(self) -> int:
        return len(self.caplog.messages)

    def __eq__(self, other: object) -> bool:
        return self.caplog.messages == other


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.INFO)
    return Lines(caplog)


def progress_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    """The progress lines of ``name`` ("name: unit k/n ...", not the job's other lines)."""
    return [message for message in caplog.messages if re.match(rf"{re.escape(name)}: \w+ \d+", message)]


def test_a_line_at_the_first_update_then_once_per_interval_and_at_the_last(lines: Lines) -> None:
    clock = FakeClock()
    progress = Progress("distill", 11, interval=30, clock=clock)
    logged = []
    for step in range(1, 12):
        clock.now = 10.0 * step  # a step every 10 s
        if progress.update(step):
            logged.append(step)
    # step 1 (the first), then 30 s after each line (steps 4, 7, 10), and step 11 (the last)
    assert logged == [1, 4, 7, 10, 11]
    assert [int(re.search(r"step (\d+)/11", line).group(1)) for line in lines] == logged


def test_never_more_often_than_the_interval(lines: Lines) -> None:
    clock = FakeClock()
    progress = Progress("distill", 10_000, interval=30, clock=clock)
    made = []
    for step in range(1, 10_000):
        clock.now = step * 0.01  # 100 steps/s: 99.99 s in all
        progress.update(step, lambda step=step: made.append(step) or "loss 1")
    times = [step * 0.01 for step in made]
    # lines at t = 0.01, 30.01, 60.01 and 90.01 s, and their details made for them only
    assert made[0] == 1 and len(lines) == len(made) == 4
    assert all(b - a >= 30 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    progress.update(10_000, "loss 0.5")
    assert len(lines) == 5 and lines[-1].startswith("distill: step 10000/10000 (100%)")


def test_the_line_holds_the_rate_the_details_and_the_time_left(lines: Lines) -> None:
    clock = FakeClock()
    progress = Progress("distill", 4000, interval=30, clock=clock)
    clock.now = 5.0
    progress.update(200, "loss 0.5")  # the first: 200 steps in 5 s since the progress was made
    assert lines[-1] == "distill: step 200/4000 (5%), 40.0 steps/s, loss 0.5, 1:35 left"  # 3800 / 40 = 95 s
    clock.now = 30.0
    assert not progress.update(1000, "not logged")  # 25 s since the last line
    clock.now = 35.0
    progress.update(1200, lambda: "loss 0.0123")  # 1000 steps in the 30 s window
    assert lines[-1] == "distill: step 1200/4000 (30%), 33.3 steps/s, loss 0.0123, 1:24 left"  # 2800 / 33.3 = 84 s
    clock.now = 35.0 + 3600 + 60
    progress.update(1300, "loss 0.01")  # 100 steps in an hour and a minute: 36.6 s a step, 2700 steps to go
    assert lines[-1] == "distill: step 1300/4000 (32%), 36.6 s/step, loss 0.01, 27:27:00 left"
    clock.now = 4000.0
    progress.update(4000)
    # the last: the window's rate (2700 steps in 305 s) and the whole run's time
    assert lines[-1] == "distill: step 4000/4000 (100%), 8.9 steps/s, done in 1:06:40"


def test_resumed_and_open_ended_progress(lines: Lines) -> None:
    clock = FakeClock()
    resumed = Progress("member 0 training", 1000, "batch", interval=30, clock=clock, start=600)
    clock.now = 20.0
    resumed.update(700)
    assert lines[-1] == "member 0 training: batch 700/1000 (70%), 5.0 batches/s, 1:00 left"
    open_ended = Progress("search", None, "image", interval=30, clock=clock)
    clock.now = 21.0
    open_ended.update(500)
    assert lines[-1] == "search: image 500, 500.0 images/s"


def test_iterate_counts_an_item_once_its_body_has_run(lines: Lines) -> None:
    clock = FakeClock()
    progress = Progress("prune", 3, "student", interval=30, clock=clock)
    for _ in progress.iterate(["a", "b", "c"], "details"):
        clock.now += 4.0
    assert lines == [
        "prune: student 1/3 (33%), 4.0 s/student, details, 0:08 left",
        "prune: student 3/3 (100%), 4.0 s/student, details, done in 0:12",
    ]


def test_durations_and_rates() -> None:
    assert [duration(s) for s in (0, 8.4, 68, 600, 3600, 3 * 3600 + 2 * 60 + 11)] == [
        "0:00",
        "0:08",
        "1:08",
        "10:00",
        "1:00:00",
        "3:02:11",
    ]
    assert rate_text(41.25, "step") == "41.2 steps/s"
    assert rate_text(0.25, "batch") == "4.0 s/batch"
    assert rate_text(2.0, "batch") == "2.0 batches/s"


def test_the_interval_is_read_from_the_module_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Progress("x", 1).interval == progress_module.INTERVAL_SECONDS == 30.0
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    assert Progress("x", 1).interval == 0.0


# A real distillation (a few students of a few filters, 16 px, 12 steps): a line every step with the interval at 0.

SIZE = 16
STEPS = 12
NEURONS = np.array(["s1_n0", "s1_n1", "s1_n2"])
SETTINGS = DistillSettings(steps=STEPS, batch_size=16, learning_rate=1e-2, smoothing_every=5, seed=0)
LINE = re.compile(
    r"^(?P<name>\w+): step (?P<step>\d+)/(?P<total>\d+) \((?P<percent>\d+)%\), (?P<rate>[\d.]+) steps/s, "
    r"loss (?P<loss>[\d.e+-]+) \(mean of 3 students; min (?P<min>[\d.e+-]+) (?P<min_id>\S+), "
    r"max (?P<max>[\d.e+-]+) (?P<max_id>\S+)\), (?:(?P<left>[\d:]+) left|done in (?P<done>[\d:]+))$"
)


def _students() -> list[CompactModel]:
    students = []
    for seed in range(3):
        torch.manual_seed(seed)
        students.append(CompactModel([3, 3, 2, 2, 2], image_size=SIZE))
    return students


@pytest.fixture(scope="module")
def pool() -> PoolData:
    images = make_images(200, seed=1, size=SIZE)
    labels = np.random.default_rng(0).normal(size=(3, 200))
    return PoolData(ImageArray(images), LabelArray(labels, NEURONS), 200, heldout=40, block=64)


def _weights(models: list[torch.nn.Module]) -> list[torch.Tensor]:
    return [tensor.detach().clone() for model in models for tensor in model.state_dict().values()]


@pytest.mark.parametrize("as_bank", [False, True], ids=["in step", "bank"])
def test_distillation_logs_each_step_window_with_its_students_losses(
    pool: PoolData, as_bank: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    quiet = [StudentBank.from_students(_students())] if as_bank else _students()
    quiet_histories = distill_pool(quiet, pool, SETTINGS)  # the default interval: the first and the last lines
    assert len(progress_lines(caplog, "distill")) == 2
    caplog.clear()

    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    models = [StudentBank.from_students(_students())] if as_bank else _students()
    histories = distill_pool(models, pool, SETTINGS, name="retrain")
    # a line per step changes nothing the students learn
    assert [h["loss"] for h in histories] == [h["loss"] for h in quiet_histories]
    for a, b in zip(_weights(models), _weights(quiet), strict=True):
        assert torch.equal(a, b)

    lines = progress_lines(caplog, "retrain")
    assert len(lines) == STEPS
    for step, line in enumerate(lines, start=1):
        found = LINE.match(line)
        assert found, line
        assert (found["step"], found["total"], found["percent"]) == (str(step), str(STEPS), str(100 * step // STEPS))
        assert float(found["rate"]) > 0
        assert (found["left"] is None) == (step == STEPS)
        # each window is one step: its losses are that step's
        if as_bank:
            mean = histories[0]["loss"][step - 1] / 3  # the bank's loss sums its students'
        else:
            per_student = [h["loss"][step - 1] for h in histories]
            mean = np.mean(per_student)
            low, high = int(np.argmin(per_student)), int(np.argmax(per_student))
            assert float(found["min"]) == pytest.approx(per_student[low], rel=1e-3)
            assert float(found["max"]) == pytest.approx(per_student[high], rel=1e-3)
            assert (found["min_id"], found["max_id"]) == (NEURONS[low], NEURONS[high])
        assert float(found["loss"]) == pytest.approx(mean, rel=1e-3)
        assert float(found["min"]) <= float(found["loss"]) <= float(found["max"])


def test_a_window_of_several_steps_reports_their_mean_loss(
    pool: PoolData, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake clock that moves 7.5 s with each batch read: with the 30 s interval, lines at steps 1, 5, 9 and 12,
    each with its window's mean loss (step 1, steps 2-5, 6-9, 10-12)."""
    caplog.set_level(logging.INFO)
    clock = FakeClock()

    class SlowImages:
        def images(self, indices: np.ndarray) -> np.ndarray:
            clock.now += 7.5
            return pool.images.images(indices)

    monkeypatch.setattr(distill_module, "Progress", partial(Progress, clock=clock))
    data = PoolData(SlowImages(), LabelArray(pool.labels.array[:1], NEURONS[:1]), 200, heldout=40, block=64)
    history = distill_pool(_students()[:1], data, SETTINGS)[0]
    lines = progress_lines(caplog, "distill")
    steps = [int(re.search(r"step (\d+)/", line).group(1)) for line in lines]
    assert steps == [1, 5, 9, 12]
    windows = [(0, 1), (1, 5), (5, 9), (9, 12)]
    for line, (a, b) in zip(lines, windows, strict=True):
        loss = float(re.search(r"loss ([\d.e+-]+), ", line).group(1))
        assert loss == pytest.approx(np.mean(history["loss"][a:b]), rel=1e-3)
    rate = 4 / 30  # 4 steps in 30 s (the last window: 3 steps in 22.5 s)
    assert lines[1] == f"distill: step 5/12 (41%), 7.5 s/step, loss {np.mean(history['loss'][1:5]):.4g}, 0:52 left"
    assert lines[-1].endswith(f"{1 / rate:.1f} s/step, loss {np.mean(history['loss'][9:12]):.4g}, done in 1:30")


# The teacher's labels and synthesis report too (their loops, with small stand-ins).


def test_teacher_labels_log_their_progress(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    n_images, written = 1000, []

    class Recipe:
        heldout_start = 900

        def __len__(self) -> int:
            return n_images

        def images(self, indices: np.ndarray) -> np.ndarray:
            return np.zeros((len(indices), 8, 8, 3), dtype=np.uint8)

        def describe(self) -> str:
            return "stand-in"

    class Backbone:
        def extract(self, images: np.ndarray, layers: list[str], **_: object) -> dict[str, np.ndarray]:
            return {layers[0]: np.ones((len(images), 2, 1, 1), dtype=np.float32)}

    class Teacher:
        def __init__(self, *_: object) -> None:
            pass

        def __call__(self, features: torch.Tensor) -> np.ndarray:
            return np.ones((2, 3, features.shape[0]))

    @contextmanager
    def writer(*_: object):  # noqa: ANN202
        class Writer:
            def write(self, start: int, labels: np.ndarray) -> None:
                written.append((start, labels.shape))

        yield Writer()

    monkeypatch.setattr(compact_jobs, "pool_recipe", lambda *_: Recipe())
    monkeypatch.setattr(compact_jobs, "Teacher", Teacher)
    monkeypatch.setattr(compact_jobs, "load_backbone", lambda *_: Backbone())
    monkeypatch.setattr(compact_jobs, "provenance_attrs", lambda *_: {})
    monkeypatch.setattr(compact_jobs, "readout_neurons", lambda _: ["n0", "n1", "n2"])
    monkeypatch.setattr(compact_jobs, "TeacherLabelWriter", writer)
    compact_jobs.teacher_labels(
        member_paths=["m0", "m1"],
        readouts="readouts.pt",
        dataset="dataset.nc",
        output=str(tmp_path / "teacher.nc"),
        pool={},
        features={"backbone": "stand-in", "layer": "l", "batch_size": 256, "input_size": 8},
        session="s1",
        seed=0,
        device="cpu",
    )
    assert [start for start, _ in written] == [0, 256, 512, 768]
    lines = progress_lines(caplog, "teacher labels")
    assert [re.match(r"teacher labels: image (\d+)/1000 \(\d+%\), [\d.]+ images/s", line)[1] for line in lines] == [
        "256",
        "512",
        "768",
        "1000",
    ]
    assert lines[0].endswith(" left") and " done in " in lines[-1]


def test_synthesis_logs_its_steps_with_the_objective(caplog: pytest.LogCaptureFixture) -> None:
    """The default interval: the first and the last step of the whole job's synthesis (two groups of 5 + 3
    steps), and the natural-image search's."""
    caplog.set_level(logging.INFO)
    models = [make_neuron(filters, seed) for seed, filters in enumerate(PRUNED_FILTERS[:2])]
    neuron_stimuli(models, ["n0", "n1"], small_pool(), small_design(), seed=1)
    lines = progress_lines(caplog, "synthesis")
    assert len(lines) == 2
    first = r"synthesis: step 1/16 \(6%\), [\d.]+ (?:steps/s|s/step), group 1/2 \(n0\) synthesis: best response "
    first += r"up [\d.e+-]+ \(starts [\d.e+-]+\.\.[\d.e+-]+\), down [\d.e+-]+ \(starts [\d.e+-]+\.\.[\d.e+-]+\) "
    first += r"over 1 neuron\(s\), [\d:]+ left$"
    assert re.match(first, lines[0]), lines[0]
    last = r"synthesis: step 16/16 \(100%\), [\d.]+ (?:steps/s|s/step), group 2/2 \(n1\) adversarial: response "
    last += r"up [\d.e+-]+ \(sources [\d.e+-]+\.\.[\d.e+-]+\), down .* over 1 neuron\(s\), done in [\d:]+$"
    assert re.match(last, lines[1]), lines[1]
    search = progress_lines(caplog, "natural images searched")  # one batch: its line is the first and the last
    assert len(search) == 1 and search[0].startswith("natural images searched: image 40/40 (100%)")


def test_ensemble_training_logs_its_batches_with_the_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line per batch with the interval at 0: over the run's batches (all epochs), each with its batch's loss."""
    from compactcortex.ensemble.train import fit_member
    from tests.test_ensemble import SETTINGS as TRAIN_SETTINGS
    from tests.test_ensemble import SHAPE, _synthetic_sessions

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    train, validation, _ = _synthetic_sessions()
    settings = dataclasses.replace(TRAIN_SETTINGS, epochs=1)
    result = fit_member(0, train, validation, SHAPE, settings, tmp_path / "checkpoint.pt")
    lines = progress_lines(caplog, "member 0 training")
    assert len(lines) == 30  # 2 sessions of 240 images in batches of 16
    found = [
        re.match(r"member 0 training: batch (\d+)/30 \(\d+%\), [\d.]+ batches/s, epoch 0, train MSE ([\d.]+)", x)
        for x in lines
    ]
    assert [int(f[1]) for f in found] == list(range(1, 31))
    assert np.mean([float(f[2]) for f in found]) == pytest.approx(result["history"][0]["train_loss"], abs=1e-4)
