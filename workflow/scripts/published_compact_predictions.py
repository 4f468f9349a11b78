"""Snakemake job of rule `published_compact_predictions`: the published compact models' predictions for one session's
images."""

from compactcortex.jobs.compact import published_compact_predictions
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    published_compact_predictions(
        root=snakemake.params.root,
        session=snakemake.wildcards.session,
        dataset=snakemake.input.dataset,
        output=snakemake.output.predictions,
    )
