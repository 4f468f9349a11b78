"""Snakemake job of rule `task_driven_session`: the task-driven baseline for one held-out session."""

from compactcortex.jobs.ensemble import task_driven_session
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    task_driven_session(
        dataset=snakemake.input.dataset,
        features_path=snakemake.input.features,
        output=snakemake.output.predictions,
        task_driven=snakemake.params.task_driven,
        features=snakemake.params.features,
        seed=snakemake.params.seed,
    )
