"""Snakemake job of rule `map_session`: map every ensemble member to a held-out session's neurons (first half of its
images)."""

from compactcortex.jobs.ensemble import map_session
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    map_session(
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
