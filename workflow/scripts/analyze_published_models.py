"""Snakemake job of rule `analyze_published_models`: the paper's own compact models through the same analyses as
this pipeline's (filters per layer, early filters, dot selectivity)."""

from compactcortex.jobs.figures import analyze_published_models
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    analyze_published_models(
        root=snakemake.params.root,
        predictions=list(snakemake.input.predictions),
        table_output=snakemake.output.table,
        filters_output=snakemake.output.early_filters,
        selectivity_output=snakemake.output.selectivity,
        clusters=snakemake.params.analysis["filter_clusters"],
        cover=snakemake.params.analysis["cover"],
        threshold=snakemake.params.analysis["dot_threshold"],
        seed=snakemake.params.seed,
    )
