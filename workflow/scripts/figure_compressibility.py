"""Snakemake job of rule `figure_compressibility`: Figure 3 (compressibility and the consolidation step)."""

from compactcortex.jobs.figures import figure_compressibility
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_compressibility(
        filters_table=snakemake.input.table,
        early_filters=snakemake.input.early_filters,
        initial_filters=snakemake.params.initial_filters,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
