"""Snakemake job: the published compact models' predictions for one session's images."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.published import published_predictions_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    published_predictions_job(
        root=snakemake.params.root,
        session=snakemake.wildcards.session,
        dataset=snakemake.input.dataset,
        output=snakemake.output.predictions,
    )
