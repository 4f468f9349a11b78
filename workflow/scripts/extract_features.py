"""Snakemake job of rule `extract_features`: frozen backbone features of one image set (a session, or an image pool)."""

from compactcortex.jobs.ensemble import extract_features
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    extract_features(
        images=snakemake.input.images,
        output=snakemake.output.features,
        features=snakemake.params.features,
        device=snakemake.params.features["device"],
        layers=snakemake.params.layers,
    )
