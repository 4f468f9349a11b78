"""Snakemake job of rule `preprocess_session`: an NWB recording -> the session dataset."""

from compactcortex.jobs.preprocess import preprocess_session
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    preprocess_session(
        snakemake.input.nwb,
        snakemake.output.dataset,
        params=snakemake.params.preprocess,
        seed=snakemake.params.seed,
        session=snakemake.params.get("session"),
        area=snakemake.params.area,
    )
