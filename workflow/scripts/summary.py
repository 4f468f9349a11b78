"""Snakemake job of rule `summary`: write the run summary (results/<dataset>/summary.json)."""

from compactcortex.jobs.summary import summary
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    summary(
        output=snakemake.output.summary,
        dataset=snakemake.params.dataset,
        roles=snakemake.params.roles,
        session_paths=snakemake.input.sessions,
        member_paths=snakemake.input.members,
        evaluation_paths=snakemake.input.evaluations,
        compact_tables=snakemake.input.compact_models,
        closed_loop_scores=snakemake.input.closed_loop_scores,
        closed_loop_adversarial=snakemake.input.closed_loop_adversarial,
        published_check_scores=snakemake.input.published_check_scores,
        published_check_adversarial=snakemake.input.published_check_adversarial,
        analysis={
            "filters_table": snakemake.input.filters_table,
            "early_filters": snakemake.input.early_filters,
            "selectivity": snakemake.input.dot_selectivity,
            "ablation": snakemake.input.dot_ablation,
        },
        published_analysis=(
            {
                "filters_table": snakemake.input.published_filters_table,
                "early_filters": snakemake.input.published_early_filters,
                "selectivity": snakemake.input.published_dot_selectivity,
            }
            if snakemake.input.published_filters_table
            else None
        ),
        simulated=snakemake.params.simulated,
    )
