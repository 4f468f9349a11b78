"""Snakemake job: Figure 4 (a dot detector)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.figures.dots import dots_figure_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    dots_figure_job(
        selectivity=snakemake.input.selectivity,
        tuning=snakemake.input.tuning,
        ablation=snakemake.input.ablation,
        stimulus_sets=list(snakemake.input.stimulus_sets),
        threshold=snakemake.params.threshold,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
