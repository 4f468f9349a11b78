"""Snakemake job: frozen backbone features of one image set (a session, or an image pool)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.features import extract_features
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    extract_features(
        snakemake.input.images,
        snakemake.output.features,
        features=snakemake.params.features,
        device=snakemake.params.features["device"],
        layers=snakemake.params.layers,
    )
