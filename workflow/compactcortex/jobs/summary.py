"""Jobs of ``rules/summary.smk``: the run summary (``results/<dataset>/summary.json``, the headline figures of a
run) and the MANIFEST (every output's sha256 with the config and the software)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compactcortex.io.manifest import write_manifest
from compactcortex.io.summary import write_summary
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


def manifest(*, output: str | Path, config: Mapping[str, Any]) -> None:
    """``results/<dataset>/MANIFEST`` beside the outputs it lists."""
    path = write_manifest(Path(output).parent, config)
    log.info("wrote %s", path)
