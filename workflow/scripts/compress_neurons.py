"""Snakemake job of rule `compress_neurons`: compact models (distil, prune, rebuild, retrain) for one chunk of a
session's neurons."""

from compactcortex.jobs.compact import compress_neurons
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    compress_neurons(
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
