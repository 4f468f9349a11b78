"""Snakemake job: a session's compact models, their predictions for the session's images and one table."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.jobs import collect_compact_session_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    collect_compact_session_job(
        chunk_dirs=snakemake.input.chunks,
        dataset=snakemake.input.dataset,
        predictions_output=snakemake.output.predictions,
        table_output=snakemake.output.table,
        session=snakemake.wildcards.session,
    )
