"""Snakemake job: write the run summary (results/<dataset>/summary.json)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to
from compactcortex.summary import write_summary

with logging_to(snakemake.log[0]):
    write_summary(
        snakemake.output.summary,
        dataset=snakemake.params.dataset,
        roles=snakemake.params.roles,
        session_paths=snakemake.input.sessions,
        member_paths=snakemake.input.members,
        evaluation_paths=snakemake.input.evaluations,
        compact_tables=snakemake.input.compact_models,
        closed_loop_scores=snakemake.input.closed_loop_scores,
        closed_loop_adversarial=snakemake.input.closed_loop_adversarial,
        analysis={
            "filters_table": snakemake.input.filters_table,
            "early_filters": snakemake.input.early_filters,
            "selectivity": snakemake.input.dot_selectivity,
            "ablation": snakemake.input.dot_ablation,
        },
        simulated=snakemake.params.simulated,
    )
