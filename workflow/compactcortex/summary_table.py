"""The per-session table of a run, from its ``summary.json``: the README's tables of results are generated from the
summary by this module, never typed.

    python -m compactcortex.summary_table results/cowley2023/summary.json --readme README.md

prints the table and, with ``--readme``, replaces the README's block between ``<!-- summary-table <dataset> -->`` and
``<!-- summary-table end -->`` with it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from compactcortex.io.readme_blocks import fill_block
from compactcortex.io.summary import read_summary


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _session_value(summary: Mapping[str, Any], model: str, session: str, key: str) -> float | None:
    return summary.get(model, {}).get("sessions", {}).get(session, {}).get(key)


def session_table(summary: Mapping[str, Any]) -> str:
    """One row per test session: median Pearson r on the held-out half of the ensemble, the task-driven baseline,
    the compact models and the published compact models; the ensemble's gain over the baseline (ratio of median
    r2_ER, or of median r squared for repeat-averaged data), the compact models' accuracy against the ensemble and
    their fidelity r^2 to it."""
    header = (
        "| session | monkey | neurons | ensemble r | task-driven r | ensemble / task-driven | compact r "
        "| compact / ensemble | fidelity r^2 | compact parameters | published compact r |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for session, ensemble in summary["ensemble"]["sessions"].items():
        data = summary["data"]["sessions"][session]
        compact = summary.get("compact", {}).get("sessions", {}).get(session)
        compact_cells = (
            [
                _number(compact.get("median_r")),
                _number(compact.get("accuracy_vs_ensemble"), 2),
                _number(compact.get("median_fidelity_r2")),
                f"{compact['median_params']:,}" if compact.get("median_params") is not None else "n/a",
            ]
            if compact
            else ["not compressed", "", "", ""]
        )
        published = _session_value(summary, "published_compact", session, "median_r")
        cells = [
            session,
            data["monkey"],
            str(data["n_reliable_neurons"]),
            _number(ensemble["median_r"]),
            _number(_session_value(summary, "task_driven", session, "median_r")),
            _number(ensemble.get("over_task_driven"), 2),
            *compact_cells,
            _number(published) if published is not None else "none",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return header + "".join(row + "\n" for row in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summary", help="results/<dataset>/summary.json")
    parser.add_argument("--readme", help="replace this file's block of the summary's dataset with the table")
    args = parser.parse_args(argv)
    summary = read_summary(args.summary)
    table = session_table(summary)
    print(table, end="")
    if args.readme:
        fill_block(args.readme, summary["dataset"], table)


if __name__ == "__main__":
    main()
