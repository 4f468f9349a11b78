"""Snakemake job of rule `figure_compact_models`: a report page per compact model."""

from compactcortex.jobs.figures import figure_compact_models
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    figure_compact_models(
        models_tables=list(snakemake.input.models),
        stimulus_sets=list(snakemake.input.stimulus_sets),
        evaluations=list(snakemake.input.evaluations),
        output=snakemake.output.pages,
    )
