"""Snakemake job of rule `check_synthesis_on_published`: this pipeline's synthesised images shown to the published
compact model of the same neuron, scored as the closed loop scores a recording."""

from compactcortex.jobs.closed_loop import check_synthesis_on_published
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    check_synthesis_on_published(
        stimuli=f"{snakemake.input.stimulus_set}/stimuli.nc",
        dataset=snakemake.input.dataset,
        root=snakemake.params.root,
        scores_output=snakemake.output.scores,
        adversarial_output=snakemake.output.adversarial,
        closed_loop=snakemake.params.closed_loop,
        seed=snakemake.params.seed,
        session=snakemake.wildcards.session,
    )
