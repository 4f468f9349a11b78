"""Snakemake job: the task-driven baseline for one held-out session."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to, use_threads
from compactcortex.task_driven import task_driven_job

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    task_driven_job(
        dataset=snakemake.input.dataset,
        features_path=snakemake.input.features,
        output=snakemake.output.predictions,
        task_driven=snakemake.params.task_driven,
        features=snakemake.params.features,
        seed=snakemake.params.seed,
    )
