"""Snakemake job of rule `train_member`: train one ensemble member on the training sessions, stopping early on the
validation session."""

from compactcortex.jobs.ensemble import train_member
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    train_member(
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
        fit_half_datasets=snakemake.input.fit_half_datasets,
        fit_half_features=snakemake.input.fit_half_features,
    )
