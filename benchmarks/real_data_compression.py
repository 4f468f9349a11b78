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
import hashlib
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
from compactcortex.jobs.ensemble import map_session

# pools: real stimulus images of the other sessions beside, or instead of, the procedural images
OTHER_SESSIONS_POOL = {"other_sessions": 8000, "images": {"natural": 1200}}
MOSTLY_OTHER_SESSIONS_POOL = {
    "other_sessions": 10000,
    "images": {"natural": 300, "dead_leaves": 0, "texture": 0, "gaudy": 0, "dots": 0, "shapes": 0},
}
TWICE_THE_STEPS = {"steps": 2400, "retrain_steps": 600}
# the real-data config's pool: the other sessions' images, and enough natural crops that the held-out part holds the
# synthesis' 60 control images
REAL_IMAGES_POOL = {
    "other_sessions": 10000,
    "images": {"natural": 1200, "dead_leaves": 0, "texture": 0, "gaudy": 0, "dots": 0, "shapes": 0},
    "heldout": 1600,
}

# name -> changes to the config's compact section (pool changes relabel the pool with the teacher)
SETTINGS: dict[str, dict[str, Any]] = {
    "the config's": {},
    "48 px students": {"image_size": 48},
    "other sessions' images in the pool": {"pool": OTHER_SESSIONS_POOL},
    "twice the steps": TWICE_THE_STEPS,
    "other sessions' images and twice the steps": {"pool": OTHER_SESSIONS_POOL, **TWICE_THE_STEPS},
    "mostly other sessions' images": {"pool": MOSTLY_OTHER_SESSIONS_POOL},
    "mostly other sessions' images and twice the steps": {"pool": MOSTLY_OTHER_SESSIONS_POOL, **TWICE_THE_STEPS},
    "mostly other sessions' images, twice the steps, 24 filters": {
        "pool": MOSTLY_OTHER_SESSIONS_POOL,
        **TWICE_THE_STEPS,
        "filters": 24,
    },
    "mostly other sessions' images, twice the steps, learning rate 0.004": {
        "pool": MOSTLY_OTHER_SESSIONS_POOL,
        **TWICE_THE_STEPS,
        "learning_rate": 0.004,
    },
    "other sessions' images and 1,200 natural crops (1,600 held out)": {"pool": REAL_IMAGES_POOL},
    "other sessions' images and 1,200 natural crops (1,600 held out), twice the steps": {
        "pool": REAL_IMAGES_POOL,
        **TWICE_THE_STEPS,
    },
    "other sessions' images and 1,200 natural crops (1,600 held out), learning rate 0.004": {
        "pool": REAL_IMAGES_POOL,
        "learning_rate": 0.004,
    },
    "mostly other sessions' images, three times the steps": {
        "pool": MOSTLY_OTHER_SESSIONS_POOL,
        "steps": 3600,
        "retrain_steps": 900,
    },
}


def merged(section: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(section)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def session_readouts(config: dict[str, Any], session: str, cache: Path) -> Path:
    """The run's mapping of a test session; a session the run does not map (the validation session, on which
    settings are chosen) is mapped here the same way, once."""
    data = Path("results") / config["dataset"]
    mapped = data / "ensemble" / "readouts" / f"{session}.pt"
    if mapped.is_file():
        return mapped
    readouts = cache / "readouts.pt"
    if not readouts.is_file():
        map_session(
            member_paths=member_paths(config), dataset=str(data / "sessions" / f"{session}.nc"),
            features_path=str(data / "features" / f"{session}.pt"), predictions_output=str(cache / "predictions.nc"),
            readouts_output=str(readouts), mapping=config["mapping"], features=config["features"], device="cpu",
            seed=config["seed"],
        )  # fmt: skip
    return readouts


def member_paths(config: dict[str, Any]) -> list[str]:
    return sorted(str(p) for p in (Path("results") / config["dataset"] / "ensemble" / "members").glob("member*.pt"))


def pool_teacher(
    config: dict[str, Any], pool: dict[str, Any], session: str, others: list[str], cache: Path
) -> tuple[Path, float]:
    """The teacher's labels of a pool: the run's own where the pool is the config's, else labelled once per pool
    (kept in the cache folder, named by the pool's digest). Returns the path and the minutes spent labelling."""
    data = Path("results") / config["dataset"]
    run_teacher = data / "compact" / session / "teacher.nc"
    if pool == config["compact"]["pool"] and run_teacher.is_file():
        return run_teacher, 0.0
    digest = hashlib.sha256(json.dumps(pool, sort_keys=True).encode()).hexdigest()[:12]
    teacher = cache / f"teacher_{digest}.nc"
    if teacher.is_file():
        return teacher, 0.0
    start = time.perf_counter()
    teacher_labels(
        member_paths=member_paths(config), readouts=str(session_readouts(config, session, cache)),
        dataset=str(data / "sessions" / f"{session}.nc"), other_datasets=others, output=str(teacher), pool=pool,
        features=config["features"], session=session, seed=config["seed"], device="cpu",
    )  # fmt: skip
    return teacher, (time.perf_counter() - start) / 60


def run_setting(
    config: dict[str, Any], changes: dict[str, Any], session: str, neurons: list[str], cache: Path, folder: Path
) -> dict[str, Any]:
    data = Path("results") / config["dataset"]
    compact = merged(config["compact"], changes)
    dataset = str(data / "sessions" / f"{session}.nc")
    others = [
        str(data / "sessions" / f"{s['id']}.nc") for s in config["sessions"] if s["id"] != session
    ] if compact["pool"]["other_sessions"] else []  # fmt: skip
    teacher, teacher_minutes = pool_teacher(config, compact["pool"], session, others, cache)
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
    cache = Path("results/bench/real_data_compression") / config["dataset"] / args.session
    cache.mkdir(parents=True, exist_ok=True)
    neurons = readout_neurons(session_readouts(config, args.session, cache))[: args.neurons]
    output = Path(args.output or f"results/bench/real_data_compression_{args.session}.json")
    results = json.loads(output.read_text()) if output.is_file() else {}
    for name in args.setting or list(SETTINGS):
        with tempfile.TemporaryDirectory() as folder:
            results[name] = run_setting(config, SETTINGS[name], args.session, neurons, cache, Path(folder))
        r = results[name]
        print(
            f"{name:<40} fidelity {r['median_fidelity_r2']:.3f}  r {r['median_r']:.3f}  "
            f"teacher {r['teacher_minutes']:.1f} min  compression {r['compression_minutes']:.1f} min",
            flush=True,
        )
        write_text_atomic(output, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
