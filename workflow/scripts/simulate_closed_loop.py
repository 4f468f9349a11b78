"""Snakemake job of rule `simulate_closed_loop`: the closed loop's recording: the stimulus set shown to the same
simulated neurons."""

from compactcortex.jobs.closed_loop import simulate_closed_loop
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    simulate_closed_loop(
        session=f"{snakemake.wildcards.session}_closedloop",
        stimuli_path=f"{snakemake.input.stimulus_set}/stimuli.nc",
        neurons_path=snakemake.input.neurons,
        original_truth_path=snakemake.input.truth,
        lab=snakemake.params.lab,
        repeats=snakemake.params.repeats,
        seed=snakemake.params.seed,
        nwb_path=snakemake.output.nwb,
        truth_path=snakemake.output.truth,
        template_name=snakemake.params.template,
        image_column=snakemake.params.image_column,
    )
