"""The ensemble's two protocols on real data, session by session and monkey by monkey.

After a run of a real-data configuration, maps a set of ensemble members (default: the run's) to every test session
and to the validation session, exactly as ``map_session`` does (ridge on the first half of each session's images),
and reports the ensemble's median Pearson r on each session's held-out half beside the run's task-driven baseline
(test sessions only).
Run it once per protocol, e.g. on members of the paper's protocol kept from an earlier run:

    python benchmarks/real_data_ensemble.py --label "test fit halves"
    python benchmarks/real_data_ensemble.py --label "paper protocol" --members results/bench/paper_members

The validation session is the one to choose settings on: neither protocol trains on it and both stop on it, so it
shows what a protocol does for a session it never trained on; the test sessions are reported, never chosen on.
Writes results/bench/real_data_ensemble_<dataset>.json, one entry per label.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.config import load_config
from compactcortex.evaluate import evaluation_table
from compactcortex.jobs.ensemble import map_session


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/cowley2023.yaml")
    parser.add_argument("--label", required=True, help="the protocol's name in the output")
    parser.add_argument("--members", help="folder of member*.pt (default: the run's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)
    data = Path("results") / config["dataset"]
    members = sorted(str(p) for p in Path(args.members or data / "ensemble" / "members").glob("member*.pt"))
    if not members:
        raise SystemExit(f"no member*.pt in {args.members or data / 'ensemble' / 'members'}")
    roles = {s["id"]: s["role"] for s in config["sessions"]}
    monkeys = config["source"]["monkey"]
    rows = {}
    for session in [s for s, role in roles.items() if role in ("test", "validation")]:
        dataset = str(data / "sessions" / f"{session}.nc")
        with tempfile.TemporaryDirectory() as folder:
            predictions = Path(folder) / "predictions.nc"
            map_session(
                member_paths=members, dataset=dataset, features_path=str(data / "features" / f"{session}.pt"),
                predictions_output=str(predictions), readouts_output=str(Path(folder) / "readouts.pt"),
                mapping=config["mapping"], features=config["features"], device="cpu", seed=config["seed"],
            )  # fmt: skip
            models = {"ensemble": str(predictions)}
            task_driven = data / "task_driven" / "predictions" / f"{session}.nc"
            if task_driven.is_file():  # the run's baseline: the test sessions only
                models["task_driven"] = str(task_driven)
            table = evaluation_table(dataset, models, None)
        row = {"role": roles[session], "monkey": monkeys.get(session), "n_neurons": len(table)}
        for model in models:
            row[f"median_r_{model}"] = float(np.nanmedian(table[f"r_{model}"]))
        if "task_driven" in models:
            row["ensemble_over_task_driven_r2"] = (row["median_r_ensemble"] / row["median_r_task_driven"]) ** 2
        rows[session] = row
        print(f"{args.label:<20} {session} ({row['role']}, {row['monkey']}): " + json.dumps(row), flush=True)
    output = Path(f"results/bench/real_data_ensemble_{config['dataset']}.json")
    results = json.loads(output.read_text()) if output.is_file() else {}
    results[args.label] = {"members": members, "sessions": rows}
    write_text_atomic(output, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
