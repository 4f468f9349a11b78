"""Snakemake job: the teacher (ensemble mean + mapping) labels a session's distillation pool, all neurons at once."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.compact.teacher import teacher_labels_job
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    teacher_labels_job(
        member_paths=snakemake.input.members,
        readouts=snakemake.input.readouts,
        pool=snakemake.input.pool,
        pool_features=snakemake.input.pool_features,
        output=snakemake.output.teacher,
        layer=snakemake.params.layer,
        device=snakemake.params.device,
    )
