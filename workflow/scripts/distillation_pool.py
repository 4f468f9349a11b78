"""Snakemake job of rule `distillation_pool`: draw one test session's distillation pool."""

from compactcortex.jobs.compact import distillation_pool
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    distillation_pool(
        dataset=snakemake.input.dataset,
        other_datasets=list(snakemake.input.other_datasets),
        output=snakemake.output.pool,
        pool=snakemake.params.pool,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
