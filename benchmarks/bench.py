"""`make bench`: measured speeds and memory of the pipeline's stages on this machine.

Preprocessing: spike-counting throughput (spikes/s) of the vectorised counter against the naive per-trial
loop on the same data, and the wall time and peak memory of preprocessing one NWB session.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from compactcortex.atomic import write_text_atomic
from compactcortex.config import validate_config
from compactcortex.io.nwb import write_recording_nwb
from compactcortex.recording import Recording, concatenate_spike_trains
from compactcortex.spike_counts import count_spikes, count_spikes_per_trial_loop

# The schema's defaults: the benchmark measures what a default run does.
PREPROCESS_PARAMS = validate_config(
    {
        "dataset": "bench",
        "source": {"kind": "virtual_lab"},
        "sessions": [{"id": "a", "role": "train"}, {"id": "b", "role": "validation"}, {"id": "c", "role": "test"}],
    }
)["preprocess"]


def synthetic_recording(n_units: int, n_images: int, repeats: int, image_size: int, seed: int = 0) -> Recording:
    """A session of Poisson spike trains (~12 spikes/s) with shuffled image presentations every 250 ms."""
    rng = np.random.default_rng(seed)
    trial_image = np.concatenate([rng.permutation(n_images) for _ in range(repeats)])
    onset = 1.0 + np.arange(trial_image.size) * 0.25 + rng.uniform(0, 0.01, trial_image.size)
    duration = onset[-1] + 1.0
    trains = [np.sort(rng.uniform(0, duration, rng.poisson(rate * duration))) for rate in rng.uniform(4, 20, n_units)]
    spike_times, unit_bounds = concatenate_spike_trains(trains)
    return Recording(
        session="bench",
        monkey="bench",
        unit_ids=np.array([f"u{unit:04d}" for unit in range(n_units)]),
        spike_times=spike_times,
        unit_bounds=unit_bounds,
        trial_onset=onset,
        trial_offset=onset + 0.1,
        trial_image=trial_image,
        images=rng.integers(0, 256, (n_images, image_size, image_size, 3), dtype=np.uint8),
        image_ids=np.array([f"img{index:05d}" for index in range(n_images)]),
        image_types=np.full(n_images, "natural"),
    )


def _best_of(repeats: int, function, *args) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def bench_spike_counting(recording: Recording, naive_units: int) -> dict[str, float]:
    start = recording.trial_onset + 0.05
    stop = start + 0.1
    vectorised_s = _best_of(3, count_spikes, recording.spike_times, recording.unit_bounds, start, stop)
    subset_bounds = recording.unit_bounds[: naive_units + 1]
    subset_spikes = int(subset_bounds[-1])
    naive_s = _best_of(1, count_spikes_per_trial_loop, recording.spike_times, subset_bounds, start, stop)
    subset_vectorised_s = _best_of(3, count_spikes, recording.spike_times, subset_bounds, start, stop)
    return {
        "units": recording.n_units,
        "trials": recording.n_trials,
        "spikes": recording.n_spikes,
        "vectorised_spikes_per_s": recording.n_spikes / vectorised_s,
        "naive_spikes_per_s": subset_spikes / naive_s,
        "speedup_over_naive": naive_s / subset_vectorised_s,
        "naive_measured_on_units": naive_units,
    }


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM, unlike ru_maxrss, does not inherit the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _preprocess_child(nwb: str, output: str, queue: multiprocessing.Queue) -> None:
    from compactcortex.jobs.preprocess import preprocess_session

    start = time.perf_counter()
    preprocess_session(nwb, output, params=PREPROCESS_PARAMS, seed=0)
    queue.put((time.perf_counter() - start, peak_memory_mb()))


def _import_child(queue: multiprocessing.Queue) -> None:
    import compactcortex.jobs.preprocess  # noqa: F401

    queue.put((0.0, peak_memory_mb()))


def in_child(target, *args) -> tuple[float, float]:  # noqa: ANN001
    """``target(*args, queue)`` in a fresh process (its own peak memory), which puts (seconds, peak MB) on the
    queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} failed (exit code {process.exitcode})")
    return result


def bench_preprocessing(recording: Recording) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        nwb = Path(folder) / "bench.nwb"
        write_recording_nwb(nwb, recording)
        seconds, peak_mb = in_child(_preprocess_child, str(nwb), str(Path(folder) / "bench.nc"))
        _, baseline_mb = in_child(_import_child)
        output_mb = (Path(folder) / "bench.nc").stat().st_size / 2**20
        nwb_mb = nwb.stat().st_size / 2**20
    max_repeats = np.bincount(recording.trial_image).max()
    session_mb = (recording.images.nbytes + recording.n_units * recording.images.shape[0] * max_repeats * 8) / 2**20
    return {
        "seconds_per_session": seconds,
        "peak_memory_mb": peak_mb,
        "memory_above_imports_mb": peak_mb - baseline_mb,
        "session_in_memory_mb": session_mb,
        "nwb_mb": nwb_mb,
        "session_dataset_mb": output_mb,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--naive-units", type=int, default=10, help="units the slow per-trial loop is timed on")
    parser.add_argument("--output", default="results/bench/preprocessing.json")
    args = parser.parse_args(argv)
    recording = synthetic_recording(args.units, args.images, args.repeats, args.image_size)
    counting = bench_spike_counting(recording, min(args.naive_units, args.units))
    print(f"spike counting: {counting['units']} units x {counting['trials']} trials, {counting['spikes']:,} spikes")
    print(f"  vectorised      {counting['vectorised_spikes_per_s']:>14,.0f} spikes/s")
    print(f"  naive loop      {counting['naive_spikes_per_s']:>14,.0f} spikes/s (on {args.naive_units} units)")
    print(f"  speed-up        {counting['speedup_over_naive']:>14,.1f}x")
    preprocessing = bench_preprocessing(recording)
    print(f"preprocessing one NWB session ({args.images} images of {args.image_size} px):")
    print(f"  wall time       {preprocessing['seconds_per_session']:>10.1f} s")
    print(
        f"  peak memory     {preprocessing['peak_memory_mb']:>10.0f} MB "
        f"({preprocessing['memory_above_imports_mb']:.0f} MB above the imports; the session itself is "
        f"{preprocessing['session_in_memory_mb']:.0f} MB in memory)"
    )
    nwb_mb, dataset_mb = preprocessing["nwb_mb"], preprocessing["session_dataset_mb"]
    print(f"  on disk         NWB {nwb_mb:.0f} MB -> dataset {dataset_mb:.0f} MB")
    write_text_atomic(args.output, json.dumps({"spike_counting": counting, "preprocessing": preprocessing}, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
