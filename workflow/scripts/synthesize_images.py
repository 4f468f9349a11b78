"""Snakemake job: maximizing, minimizing, most-driving natural and adversarial images of one chunk's neurons."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to, use_threads
from compactcortex.synthesis.jobs import synthesis_chunk_job

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    synthesis_chunk_job(
        chunk_dir=snakemake.input.models,
        pool=snakemake.input.pool,
        output=snakemake.output.stimuli,
        synthesis=snakemake.params.synthesis,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
