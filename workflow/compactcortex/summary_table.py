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


# The run's headline figures: (what, summary block, key, format). A figure the run does not have is left out.
HEADLINE = (
    ("sessions", "data", "n_sessions", "{:d}"),
    ("neurons", "data", "n_neurons", "{:,d}"),
    ("images", "data", "n_images", "{:,d}"),
    ("median reliability (noise ceiling)", "data", "median_reliability", "{:.3f}"),
    ("ensemble: median r2_ER", "ensemble", "median_r2_er", "{:.3f}"),
    ("ensemble: median r", "ensemble", "median_r", "{:.3f}"),
    ("ensemble: median r to the true rate", "ensemble", "median_r_to_truth", "{:.3f}"),
    ("ensemble: members", "ensemble", "n_members", "{:d}"),
    ("ensemble: parameters", "ensemble", "n_params", "{:,d}"),
    ("ensemble / task-driven accuracy", "ensemble", "over_task_driven", "{:.2f}"),
    ("task-driven: median r2_ER", "task_driven", "median_r2_er", "{:.3f}"),
    ("task-driven: median r", "task_driven", "median_r", "{:.3f}"),
    ("compact: models", "compact", "n_models", "{:d}"),
    ("compact: median r2_ER", "compact", "median_r2_er", "{:.3f}"),
    ("compact: median r", "compact", "median_r", "{:.3f}"),
    ("compact: median parameters", "compact", "median_params", "{:,.0f}"),
    ("compact: times smaller than the ensemble", "compact", "ensemble_to_compact_params", "{:,.0f}"),
    ("compact: median fidelity r^2 to the ensemble", "compact", "median_fidelity_r2", "{:.3f}"),
    ("compact / ensemble accuracy", "compact", "accuracy_vs_ensemble", "{:.2f}"),
    ("published compact: median r", "published_compact", "median_r", "{:.3f}"),
    ("maximizing images beat natural (share of neurons)", "synthesis", "frac_maximizing_beats_natural", "{:.2f}"),
    ("adversarial images move the intended way", "synthesis", "frac_adversarial_correct_direction", "{:.2f}"),
)


def headline_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(figure, formatted value) for each headline figure the run has (``HEADLINE``)."""
    rows = []
    for label, block, key, form in HEADLINE:
        value = summary.get(block, {}).get(key)
        if value is not None:
            rows.append((label, form.format(int(value) if form.endswith("d}") else value)))
    return rows


def headline_table(summary: Mapping[str, Any]) -> str:
    """The headline figures as a markdown table (the terminal's ``compactcortex summary``)."""
    lines = [f"| {summary.get('dataset', 'run')} | |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in headline_rows(summary)]
    return "\n".join(lines) + "\n"


SESSION_COLUMNS = (
    "session",
    "monkey",
    "neurons",
    "ensemble r",
    "task-driven r",
    "ensemble / task-driven",
    "compact r",
    "compact / ensemble",
    "fidelity r^2",
    "compact parameters",
    "published compact r",
)


def session_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per test session (cells as text, in ``SESSION_COLUMNS`` order): median Pearson r on the held-out half
    of the ensemble, the task-driven baseline, the compact models and the published compact models; the ensemble's
    gain over the baseline (ratio of median r2_ER, or of median r squared for repeat-averaged data), the compact
    models' accuracy against the ensemble and their fidelity r^2 to it."""
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
        rows.append(
            [
                session,
                data["monkey"],
                str(data["n_reliable_neurons"]),
                _number(ensemble["median_r"]),
                _number(_session_value(summary, "task_driven", session, "median_r")),
                _number(ensemble.get("over_task_driven"), 2),
                *compact_cells,
                _number(published) if published is not None else "none",
            ]
        )
    return rows


def session_table(summary: Mapping[str, Any]) -> str:
    """The rows of ``session_rows`` as a Markdown table (the README's)."""
    header = "| " + " | ".join(SESSION_COLUMNS) + " |\n" + "|---" * len(SESSION_COLUMNS) + "|\n"
    return header + "".join("| " + " | ".join(cells) + " |\n" for cells in session_rows(summary))


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
