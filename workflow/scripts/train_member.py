"""Snakemake job: train one ensemble member on the training sessions, stopping early on the validation session."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.ensemble.jobs import train_member_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    train_member_job(
        member=int(snakemake.wildcards.member),
        train_datasets=snakemake.input.train_datasets,
        train_features=snakemake.input.train_features,
        validation_dataset=snakemake.input.validation_dataset,
        validation_features=snakemake.input.validation_features,
        output=snakemake.output.member,
        checkpoint=snakemake.params.checkpoint,
        ensemble=snakemake.params.ensemble,
        features=snakemake.params.features,
        seed=snakemake.params.seed,
    )
