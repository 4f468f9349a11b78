"""Snakemake job of rule `ingest_cowley_session`: one session of the published Cowley et al. 2023 data -> the session
dataset."""

from compactcortex.jobs.preprocess import ingest_cowley_session
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    ingest_cowley_session(
        snakemake.params.root,
        snakemake.wildcards.session,
        snakemake.output.dataset,
        params=snakemake.params.preprocess,
        seed=snakemake.params.seed,
        monkey=snakemake.params.monkey,
        area=snakemake.params.area,
    )
