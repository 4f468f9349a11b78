"""Snakemake job: compact models (distil, prune, rebuild, retrain) for one chunk of a session's neurons."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.jobs import compress_chunk_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    compress_chunk_job(
        pool=snakemake.input.pool,
        teacher=snakemake.input.teacher,
        dataset=snakemake.input.dataset,
        plan=snakemake.input.plan,
        chunk=snakemake.wildcards.chunk,
        output_dir=snakemake.output.models,
        compact=snakemake.params.compact,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
