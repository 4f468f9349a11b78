"""Snakemake job: filters per layer of every compact model and the clustering of their early filters."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.analysis.compressibility import compressibility_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    compressibility_job(
        model_tables=list(snakemake.input.models),
        table_output=snakemake.output.table,
        filters_output=snakemake.output.early_filters,
        clusters=snakemake.params.analysis["filter_clusters"],
        cover=snakemake.params.analysis["cover"],
        seed=snakemake.params.seed,
    )
