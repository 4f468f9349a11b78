"""Snakemake job of rule `simulate_session`: simulate one session of the virtual V4 lab."""

from compactcortex.jobs.lab import simulate_session
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    simulate_session(
        session=snakemake.wildcards.session,
        design=snakemake.params.design,
        lab=snakemake.params.lab,
        seed=snakemake.params.seed,
        nwb_path=snakemake.output.nwb,
        truth_path=snakemake.output.truth,
        neurons_path=snakemake.output.neurons,
        template_name=snakemake.params.template,
        image_column=snakemake.params.image_column,
    )
