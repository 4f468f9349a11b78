"""Snakemake job: per test session, the median held-out accuracy of every model, side by side (one table)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.evaluate import comparison_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    comparison_job(evaluations=snakemake.input.evaluations, output=snakemake.output.table)
