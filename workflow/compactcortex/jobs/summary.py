"""Jobs of ``rules/summary.smk``: the run summary (``results/<dataset>/summary.json``, the headline figures of a
run), its tables for the report, and the MANIFEST (every output's sha256 with the config and the software)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compactcortex.io.compact_models import FILTER_COLUMNS
from compactcortex.io.html_tables import HtmlTable, write_html_tables
from compactcortex.io.manifest import write_manifest
from compactcortex.io.summary import read_summary, write_summary
from compactcortex.io.tables import read_table
from compactcortex.provenance import code_version
from compactcortex.summary import (
    accuracy_ratio,
    analysis_summary,
    compact_summary,
    data_summary,
    model_summaries,
    paired_ratio,
    published_analysis_summary,
    synthesis_summary,
)
from compactcortex.summary_table import SESSION_COLUMNS, headline_rows, session_rows

log = logging.getLogger(__name__)


def summary(
    *,
    output: str | Path,
    dataset: str,
    roles: Mapping[str, str],
    session_paths: Sequence[str | Path],
    member_paths: Sequence[str | Path] = (),
    evaluation_paths: Sequence[str | Path] = (),
    compact_tables: Sequence[str | Path] = (),
    closed_loop_scores: Sequence[str | Path] = (),
    closed_loop_adversarial: Sequence[str | Path] = (),
    published_check_scores: Sequence[str | Path] = (),
    published_check_adversarial: Sequence[str | Path] = (),
    analysis: Mapping[str, str | Path] | None = None,
    published_analysis: Mapping[str, str | Path] | None = None,
    simulated: bool = False,
) -> None:
    """The headline figures of the run, from every stage's outputs."""
    summary = {
        "dataset": dataset,
        "code_version": code_version(),
        "data": data_summary(roles, session_paths),
    }
    if member_paths and evaluation_paths:
        summary.update(model_summaries(member_paths, evaluation_paths, simulated))
    if compact_tables and "compact" in summary:
        sizes = compact_summary(compact_tables, summary["ensemble"]["n_params"])
        for session, block in sizes.pop("sessions").items():
            summary["compact"]["sessions"].setdefault(session, {}).update(block)
        summary["compact"].update(sizes)
        summary["compact"]["accuracy_vs_ensemble"] = accuracy_ratio(summary["compact"], summary["ensemble"])
        summary["compact"]["median_paired_accuracy_ratio"] = paired_ratio(evaluation_paths)
        for session, block in summary["compact"]["sessions"].items():
            block["accuracy_vs_ensemble"] = accuracy_ratio(block, summary["ensemble"]["sessions"].get(session, {}))
    if closed_loop_scores:
        summary["synthesis"] = synthesis_summary(closed_loop_scores, closed_loop_adversarial)
    if published_check_scores:
        check = synthesis_summary(published_check_scores, published_check_adversarial)
        summary.setdefault("synthesis", {})["published_check"] = check
    if analysis:
        summary["analysis"] = analysis_summary(**analysis)
    if published_analysis:
        summary.setdefault("analysis", {})["published"] = published_analysis_summary(**published_analysis)
    write_summary(output, summary)


SESSIONS_NOTE = (
    "Median Pearson r on each test session's held-out half. ensemble / task-driven: the ratio of median r2_ER (of "
    "median r squared where the data have no single trials); compact / ensemble: the ratio of median r2_ER (r without "
    "r2_ER); fidelity: r^2 to the ensemble on the distillation pool's held-out images; parameters: the median."
)
MODEL_COLUMNS = ("session", "neuron", "parameters", "filters per layer", "fidelity r^2", "fidelity r^2 unpruned",
                 "r2_ER", "r")  # fmt: skip
MODELS_NOTE = (
    "One row per compact model (its model card, compact/<session>/models/<chunk>/<neuron>.json): parameters and "
    "filters kept per layer after pruning; fidelity r^2 to the ensemble on the pool's held-out images, after and "
    "before pruning; r2_ER and Pearson r on the session's held-out half."
)


def report_tables(
    *,
    summary_path: str | Path,
    compact_tables: Sequence[str | Path],
    summary_output: str | Path,
    sessions_output: str | Path,
    models_output: str | Path,
) -> None:
    """The report's tables, as HTML pages: the run's headline figures and the per-session table (both from
    ``summary.json``, by the code that writes the README's tables), and the compact models' table (one row per model
    card: the sessions' ``models.csv``)."""
    summary = read_summary(summary_path)
    dataset = summary.get("dataset", "run")
    write_html_tables(
        summary_output,
        f"{dataset}: the run's headline figures",
        [HtmlTable("", ("figure", "value"), headline_rows(summary), note=f"from summary.json ({summary_path})")],
    )
    write_html_tables(
        sessions_output,
        f"{dataset}: each test session",
        [HtmlTable("", SESSION_COLUMNS, session_rows(summary), note=SESSIONS_NOTE)],
    )
    rows = [_model_row(Path(path).parent.name, row) for path in compact_tables for row in read_table(path).itertuples()]
    write_html_tables(
        models_output,
        f"{dataset}: the compact models ({len(rows)})",
        [HtmlTable("", MODEL_COLUMNS, rows, note=MODELS_NOTE)],
    )
    log.info("report tables: %d headline figures, %d test sessions, %d compact models", len(headline_rows(summary)),
             len(session_rows(summary)), len(rows))  # fmt: skip


def _model_row(session: str, row: Any) -> list[str]:
    def number(value: float) -> str:
        return "n/a" if value != value else f"{value:.3f}"  # NaN (no r2_ER without single trials)

    filters = ", ".join(str(int(getattr(row, column))) for column in FILTER_COLUMNS)
    return [session, str(row.neuron), f"{int(row.n_parameters):,}", filters, number(row.fidelity_r2),
            number(row.fidelity_r2_unpruned), number(row.r2_er), number(row.r)]  # fmt: skip


def manifest(*, output: str | Path, config: Mapping[str, Any]) -> None:
    """``results/<dataset>/MANIFEST`` beside the outputs it lists."""
    path = write_manifest(Path(output).parent, config)
    log.info("wrote %s", path)
