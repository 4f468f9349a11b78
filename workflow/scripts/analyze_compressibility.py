"""Snakemake job of rule `analyze_compressibility`: filters per layer of every compact model and the clustering of
their early filters."""

from compactcortex.jobs.figures import analyze_compressibility
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    analyze_compressibility(
        model_tables=list(snakemake.input.models),
        table_output=snakemake.output.table,
        filters_output=snakemake.output.early_filters,
        clusters=snakemake.params.analysis["filter_clusters"],
        cover=snakemake.params.analysis["cover"],
        seed=snakemake.params.seed,
    )
