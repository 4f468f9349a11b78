"""Snakemake job of rule `collect_compact_models`: a session's compact models, their predictions for the session's
images and one table."""

from compactcortex.jobs.compact import collect_compact_models
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    collect_compact_models(
        chunk_dirs=snakemake.input.chunks,
        dataset=snakemake.input.dataset,
        predictions_output=snakemake.output.predictions,
        table_output=snakemake.output.table,
        session=snakemake.wildcards.session,
    )
