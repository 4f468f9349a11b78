"""Snakemake job of rule `evaluate_session`: held-out accuracy table of one test session (every model the rule's
inputs name)."""

from compactcortex.evaluate import MODELS
from compactcortex.jobs.evaluate import evaluate_session
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    evaluate_session(
        dataset=snakemake.input.dataset,
        predictions={model: snakemake.input[model] for model in MODELS if model in snakemake.input.keys()},  # noqa: SIM118 - a Namedlist: `in` would test its values
        output=snakemake.output.table,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
    )
