"""Snakemake job: write the run summary (results/<dataset>/summary.json)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.rule_logging import logging_to
from compactcortex.summary import write_summary

with logging_to(snakemake.log[0]):
    write_summary(
        snakemake.output.summary,
        dataset=snakemake.params.dataset,
        roles=snakemake.params.roles,
        session_paths=snakemake.input.sessions,
        member_paths=snakemake.input.members,
        evaluation_paths=snakemake.input.evaluations,
        compact_tables=snakemake.input.compact_models,
        simulated=snakemake.params.simulated,
    )
