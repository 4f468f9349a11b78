"""Snakemake job of rule `preprocess_closed_loop`: an NWB recording -> the session dataset."""

from compactcortex.jobs.closed_loop import preprocess_closed_loop
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    preprocess_closed_loop(
        snakemake.input.nwb,
        snakemake.output.dataset,
        params=snakemake.params.preprocess,
        seed=snakemake.params.seed,
        session=snakemake.params.get("session"),
        area=snakemake.params.area,
    )
