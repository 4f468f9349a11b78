"""Snakemake job of rule `figure_predictions`: each test neuron's predicted against recorded held-out responses,
and each model's accuracy against the neuron's noise ceiling."""

from compactcortex.jobs.figures import figure_predictions
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_predictions(
        evaluations=list(snakemake.input.evaluations),
        datasets=list(snakemake.input.datasets),
        ensemble_predictions=list(snakemake.input.ensemble),
        compact_predictions=list(snakemake.input.compact),
        grid_png=snakemake.output.grid_png,
        grid_pdf=snakemake.output.grid_pdf,
        ceiling_png=snakemake.output.ceiling_png,
        ceiling_pdf=snakemake.output.ceiling_pdf,
    )
