"""Snakemake job: export the candidate images the ensemble members disagree on most."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.ensemble.active_learning import select_images_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    select_images_job(
        member_paths=snakemake.input.members,
        readout_paths=snakemake.input.readouts,
        pool_images=snakemake.input.pool,
        pool_features=snakemake.input.pool_features,
        output_dir=snakemake.output.stimulus_set,
        n_images=snakemake.params.n_images,
        layer=snakemake.params.layer,
        device=snakemake.params.device,
    )
