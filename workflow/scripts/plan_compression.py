"""Snakemake checkpoint: split a session's neurons into compression jobs."""

from compactcortex.jobs.compact import plan_compression
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    plan_compression(
        teacher=snakemake.input.teacher,
        output=snakemake.output.plan,
        neurons_per_job=snakemake.params.neurons_per_job,
    )
