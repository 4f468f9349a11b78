"""Snakemake job of rule `figure_training_curves`: the ensemble members' training loss and validation score."""

from compactcortex.jobs.figures import figure_training_curves
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_training_curves(members=list(snakemake.input.members), png=snakemake.output.png, pdf=snakemake.output.pdf)
