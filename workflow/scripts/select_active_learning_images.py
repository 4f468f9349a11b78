"""Snakemake job of rule `select_active_learning_images`: export the candidate images the ensemble members disagree
on most."""

from compactcortex.jobs.ensemble import select_active_learning_images
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    select_active_learning_images(
        member_paths=snakemake.input.members,
        readout_paths=snakemake.input.readouts,
        pool_images=snakemake.input.pool,
        pool_features=snakemake.input.pool_features,
        output_dir=snakemake.output.stimulus_set,
        n_images=snakemake.params.n_images,
        layer=snakemake.params.layer,
        device=snakemake.params.device,
    )
