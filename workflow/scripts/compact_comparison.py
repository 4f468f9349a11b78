"""Snakemake job of rule `compact_comparison`: per test session, the median held-out accuracy of every model, side by
side (one table)."""

from compactcortex.jobs.compact import compact_comparison
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    compact_comparison(evaluations=snakemake.input.evaluations, output=snakemake.output.table)
