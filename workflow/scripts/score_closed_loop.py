"""Snakemake job of rule `score_closed_loop`: score the closed-loop session against the stimulus set's intentions."""

from compactcortex.jobs.closed_loop import score_closed_loop
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    score_closed_loop(
        stimuli=f"{snakemake.input.stimulus_set}/stimuli.nc",
        dataset=snakemake.input.dataset,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
        scores_output=snakemake.output.scores,
        adversarial_output=snakemake.output.adversarial,
        closed_loop=snakemake.params.closed_loop,
        seed=snakemake.params.seed,
        session=snakemake.wildcards.session,
    )
