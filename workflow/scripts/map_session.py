"""Snakemake job: map every ensemble member to a held-out session's neurons (first half of its images)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.ensemble.jobs import map_session_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    map_session_job(
        member_paths=snakemake.input.members,
        dataset=snakemake.input.dataset,
        features_path=snakemake.input.features,
        predictions_output=snakemake.output.predictions,
        readouts_output=snakemake.output.readouts,
        mapping=snakemake.params.mapping,
        features=snakemake.params.features,
        device=snakemake.params.device,
        seed=snakemake.params.seed,
    )
