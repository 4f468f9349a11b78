"""Snakemake job: held-out accuracy table of one test session (ensemble and task-driven baseline)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.evaluate import evaluate_session_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    evaluate_session_job(
        dataset=snakemake.input.dataset,
        ensemble=snakemake.input.ensemble,
        task_driven=snakemake.input.task_driven,
        output=snakemake.output.table,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
    )
