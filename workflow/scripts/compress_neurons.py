"""Snakemake job of rule `compress_neurons`: compact models (distil, prune, rebuild, retrain) for one chunk of a
session's neurons."""

from compactcortex.jobs.compact import compress_neurons
from compactcortex.resources import loader_workers
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    compress_neurons(
        teacher=snakemake.input.teacher,
        dataset=snakemake.input.dataset,
        other_datasets=list(snakemake.input.other_datasets),
        plan=snakemake.input.plan,
        chunk=snakemake.wildcards.chunk,
        output_dir=snakemake.output.models,
        compact=snakemake.params.compact,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
        cache_mb=snakemake.resources.image_cache_mb,
        workers=loader_workers(snakemake.threads, snakemake.params.compact["device"]),
    )
