"""Snakemake job: held-out accuracy table of one test session (every model the rule's inputs name)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.evaluate import MODELS, evaluate_session_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    evaluate_session_job(
        dataset=snakemake.input.dataset,
        predictions={model: snakemake.input[model] for model in MODELS if model in snakemake.input.keys()},  # noqa: SIM118 - a Namedlist: `in` would test its values
        output=snakemake.output.table,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
    )
