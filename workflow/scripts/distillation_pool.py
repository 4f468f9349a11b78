"""Snakemake job: draw one test session's distillation pool."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.pool import distillation_pool_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    distillation_pool_job(
        dataset=snakemake.input.dataset,
        output=snakemake.output.pool,
        pool=snakemake.params.pool,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
