"""Snakemake job of rule `figure_synthesis`: Figure 2 (synthesised images and the closed loop)."""

from compactcortex.jobs.figures import figure_synthesis
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_synthesis(
        stimulus_sets=list(snakemake.input.stimulus_sets),
        scores=list(snakemake.input.scores),
        loops=list(snakemake.input.loops),
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
