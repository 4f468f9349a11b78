"""Snakemake job of rule `synthesize_images`: maximizing, minimizing, most-driving natural and adversarial images of
one chunk's neurons."""

from compactcortex.jobs.synthesis import synthesize_images
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    synthesize_images(
        chunk_dir=snakemake.input.models,
        dataset=snakemake.input.dataset,
        other_datasets=list(snakemake.input.other_datasets),
        output=snakemake.output.stimuli,
        pool=snakemake.params.pool,
        synthesis=snakemake.params.synthesis,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
