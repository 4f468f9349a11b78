"""Snakemake job: one session of the published Cowley et al. 2023 data -> the session dataset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.ingest_cowley import ingest_cowley_session
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
