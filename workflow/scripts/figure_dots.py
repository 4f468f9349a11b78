"""Snakemake job of rule `figure_dots`: Figure 4 (a dot detector)."""

from compactcortex.jobs.figures import figure_dots
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_dots(
        selectivity=snakemake.input.selectivity,
        tuning=snakemake.input.tuning,
        ablation=snakemake.input.ablation,
        stimulus_sets=list(snakemake.input.stimulus_sets),
        threshold=snakemake.params.threshold,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
