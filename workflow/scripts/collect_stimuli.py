"""Snakemake job of rule `collect_stimuli`: a session's stimulus set (controls + every neuron's images), PNGs,
manifest and predictions."""

from compactcortex.jobs.synthesis import collect_stimuli
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    collect_stimuli(
        chunk_files=list(snakemake.input.chunks),
        chunk_dirs=list(snakemake.input.models),
        dataset=snakemake.input.dataset,
        other_datasets=list(snakemake.input.other_datasets),
        output_dir=snakemake.output.stimulus_set,
        pool=snakemake.params.pool,
        synthesis=snakemake.params.synthesis,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
    )
