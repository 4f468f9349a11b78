"""Snakemake job: a session's stimulus set (controls + every neuron's images), PNGs, manifest and predictions."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to
from compactcortex.synthesis.jobs import collect_stimuli_job

with logging_to(snakemake.log[0]):
    collect_stimuli_job(
        chunk_files=list(snakemake.input.chunks),
        chunk_dirs=list(snakemake.input.models),
        pool=snakemake.input.pool,
        output_dir=snakemake.output.stimulus_set,
        synthesis=snakemake.params.synthesis,
        session=snakemake.wildcards.session,
    )
