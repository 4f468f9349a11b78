"""Snakemake job: score the closed-loop session against the stimulus set's intentions."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to
from compactcortex.synthesis.closed_loop import score_closed_loop_job

with logging_to(snakemake.log[0]):
    score_closed_loop_job(
        stimuli=f"{snakemake.input.stimulus_set}/stimuli.nc",
        dataset=snakemake.input.dataset,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
        scores_output=snakemake.output.scores,
        adversarial_output=snakemake.output.adversarial,
        closed_loop=snakemake.params.closed_loop,
        seed=snakemake.params.seed,
        session=snakemake.wildcards.session,
    )
