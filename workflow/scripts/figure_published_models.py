"""Snakemake job of rule `figure_published_models`: the paper's own compact models beside this pipeline's."""

from compactcortex.jobs.figures import figure_published_models
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_published_models(
        ours=[snakemake.input.table, snakemake.input.early_filters, snakemake.input.selectivity],
        published=[
            snakemake.input.published_table,
            snakemake.input.published_early_filters,
            snakemake.input.published_selectivity,
        ],
        threshold=snakemake.params.threshold,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
