"""What limits compact models on real data: compression settings tried on a few neurons of a real test session.

After a run of a real-data configuration (its ensemble, mappings and session datasets), each named setting below
changes the config's `compact` section; where it changes the pool, the pool is labelled again by the run's
teacher. A job of the session's first `--neurons` neurons is then compressed exactly as `compress_neurons` does,
and the table reports per setting the median fidelity r^2 (held-out pool images), the median Pearson r on the
session's held-out half, and the minutes of the teacher and the compression (one thread each).

    python benchmarks/real_data_compression.py --config config/cowley2023.yaml --session 190923 --neurons 6

Writes results/bench/real_data_compression_<session>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.config import load_config
from compactcortex.io.compact_models import card_paths, read_card
from compactcortex.io.compression_plan import write_plan
from compactcortex.io.members import readout_neurons
from compactcortex.jobs.compact import compress_neurons, teacher_labels

# name -> changes to the config's compact section (pool changes relabel the pool with the teacher)
SETTINGS: dict[str, dict[str, Any]] = {
    "the config's": {},
    "48 px students": {"image_size": 48},
    "other sessions' images in the pool": {"pool": {"other_sessions": 8000, "images": {"natural": 1200}}},
    "twice the steps": {"steps": 2400, "retrain_steps": 600},
    "other sessions' images and twice the steps": {
        "pool": {"other_sessions": 8000, "images": {"natural": 1200}},
        "steps": 2400,
        "retrain_steps": 600,
    },
    "mostly other sessions' images and twice the steps": {
        "pool": {
            "other_sessions": 10000,
            "images": {"natural": 300, "dead_leaves": 0, "texture": 0, "gaudy": 0, "dots": 0, "shapes": 0},
        },
        "steps": 2400,
        "retrain_steps": 600,
    },
}


def merged(section: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(section)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_setting(
    config: dict[str, Any], changes: dict[str, Any], session: str, neurons: list[str], folder: Path
) -> dict[str, Any]:
    data = Path("results") / config["dataset"]
    compact = merged(config["compact"], changes)
    dataset = str(data / "sessions" / f"{session}.nc")
    others = [
        str(data / "sessions" / f"{s['id']}.nc") for s in config["sessions"] if s["id"] != session
    ] if compact["pool"]["other_sessions"] else []  # fmt: skip
    teacher = data / "compact" / session / "teacher.nc"
    teacher_minutes = 0.0
    if compact["pool"] != config["compact"]["pool"]:
        teacher = folder / "teacher.nc"
        start = time.perf_counter()
        teacher_labels(
            member_paths=sorted(str(p) for p in (data / "ensemble" / "members").glob("member*.pt")),
            readouts=str(data / "ensemble" / "readouts" / f"{session}.pt"), dataset=dataset, other_datasets=others,
            output=str(teacher), pool=compact["pool"], features=config["features"], session=session,
            seed=config["seed"], device="cpu",
        )  # fmt: skip
        teacher_minutes = (time.perf_counter() - start) / 60
    plan = folder / "plan.json"
    write_plan(plan, {"chunk000": neurons}, len(neurons))
    settings = {k: v for k, v in compact.items() if k not in ("sessions", "neurons_per_job", "image_cache_mb")}
    start = time.perf_counter()
    compress_neurons(
        teacher=str(teacher), dataset=dataset, other_datasets=others, plan=str(plan), chunk="chunk000",
        output_dir=str(folder / "models"), compact=settings, session=session, seed=config["seed"],
        cache_mb=config["compact"]["image_cache_mb"],
    )  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    cards = [read_card(path) for path in card_paths([str(folder / "models")])]
    return {
        "changes": changes,
        "median_fidelity_r2": float(np.median([card["fidelity_r2"] for card in cards])),
        "median_r": float(np.median([card["r"] for card in cards])),
        "teacher_minutes": teacher_minutes,
        "compression_minutes": minutes,
        "per_neuron": {card["neuron"]: {"fidelity_r2": card["fidelity_r2"], "r": card["r"]} for card in cards},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/cowley2023.yaml")
    parser.add_argument("--session", default="190923")
    parser.add_argument("--neurons", type=int, default=6, help="the session's first neurons")
    parser.add_argument("--setting", action="append", choices=list(SETTINGS), help="a setting to try (repeat; all)")
    parser.add_argument("--output", help="default: results/bench/real_data_compression_<session>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)
    data = Path("results") / config["dataset"]
    neurons = readout_neurons(data / "ensemble" / "readouts" / f"{args.session}.pt")[: args.neurons]
    output = Path(args.output or f"results/bench/real_data_compression_{args.session}.json")
    results = json.loads(output.read_text()) if output.is_file() else {}
    for name in args.setting or list(SETTINGS):
        with tempfile.TemporaryDirectory() as folder:
            results[name] = run_setting(config, SETTINGS[name], args.session, neurons, Path(folder))
        r = results[name]
        print(
            f"{name:<40} fidelity {r['median_fidelity_r2']:.3f}  r {r['median_r']:.3f}  "
            f"teacher {r['teacher_minutes']:.1f} min  compression {r['compression_minutes']:.1f} min",
            flush=True,
        )
        write_text_atomic(output, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
