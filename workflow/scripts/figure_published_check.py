"""Snakemake job of rule `figure_published_check`: this pipeline's synthesised images shown to the published compact
models of the same neurons."""

from compactcortex.jobs.figures import figure_published_check
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_published_check(
        scores=snakemake.input.scores,
        adversarial=snakemake.input.adversarial,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
