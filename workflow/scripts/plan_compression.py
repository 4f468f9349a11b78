"""Snakemake checkpoint: split a session's neurons into compression jobs."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.jobs import plan_compression_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    plan_compression_job(
        teacher=snakemake.input.teacher,
        output=snakemake.output.plan,
        neurons_per_job=snakemake.params.neurons_per_job,
    )
