"""Snakemake job of rule `figure_accuracy`: Figure 1 (accuracy and model size)."""

from compactcortex.jobs.figures import figure_accuracy
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_accuracy(
        evaluations=list(snakemake.input.evaluations),
        members=list(snakemake.input.members),
        compact_tables=list(snakemake.input.models),
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
