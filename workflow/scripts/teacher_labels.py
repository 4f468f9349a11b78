"""Snakemake job of rule `teacher_labels`: the teacher (ensemble mean + mapping) labels a session's distillation
pool, all neurons at once."""

from compactcortex.jobs.compact import teacher_labels
from compactcortex.rule_logging import logging_to, use_threads

with logging_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    teacher_labels(
        member_paths=snakemake.input.members,
        readouts=snakemake.input.readouts,
        dataset=snakemake.input.dataset,
        other_datasets=list(snakemake.input.other_datasets),
        output=snakemake.output.teacher,
        pool=snakemake.params.pool,
        features=snakemake.params.features,
        session=snakemake.wildcards.session,
        seed=snakemake.params.seed,
        device=snakemake.params.device,
    )
