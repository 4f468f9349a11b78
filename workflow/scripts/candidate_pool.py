"""Snakemake job: draw the candidate images for active learning."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.ensemble.active_learning import candidate_pool_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    candidate_pool_job(
        output=snakemake.output.pool,
        pool=snakemake.params.pool,
        image_size=snakemake.params.image_size,
        seed=snakemake.params.seed,
    )
