"""Snakemake job: Figure 1 (accuracy and model size)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.figures.accuracy import accuracy_figure_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    accuracy_figure_job(
        evaluations=list(snakemake.input.evaluations),
        members=list(snakemake.input.members),
        compact_tables=list(snakemake.input.models),
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
