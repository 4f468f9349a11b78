"""Snakemake job: Figure 3 (compressibility and the consolidation step)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.figures.compressibility import compressibility_figure_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    compressibility_figure_job(
        filters_table=snakemake.input.table,
        early_filters=snakemake.input.early_filters,
        initial_filters=snakemake.params.initial_filters,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
    )
