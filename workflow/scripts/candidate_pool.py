"""Snakemake job of rule `candidate_pool`: draw the candidate images for active learning."""

from compactcortex.jobs.ensemble import candidate_pool
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    candidate_pool(
        output=snakemake.output.pool,
        pool=snakemake.params.pool,
        image_size=snakemake.params.image_size,
        seed=snakemake.params.seed,
    )
