"""Snakemake job: Figure 2 (synthesised images and the closed loop)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.figures.synthesis import synthesis_figure_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    synthesis_figure_job(
        stimulus_sets=list(snakemake.input.stimulus_sets),
        scores=list(snakemake.input.scores),
        loops=list(snakemake.input.loops),
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
