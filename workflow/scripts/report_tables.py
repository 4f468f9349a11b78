"""Snakemake job of rule `report_tables`: the report's tables (headline figures, test sessions, compact models)."""

from compactcortex.jobs.summary import report_tables
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    report_tables(
        summary_path=snakemake.input.summary,
        compact_tables=list(snakemake.input.compact_models),
        summary_output=snakemake.output.summary,
        sessions_output=snakemake.output.sessions,
        models_output=snakemake.output.compact_models,
    )
