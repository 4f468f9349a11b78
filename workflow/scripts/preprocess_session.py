"""Snakemake job: an NWB recording -> the session dataset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.preprocess import preprocess_nwb
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    preprocess_nwb(
        snakemake.input.nwb,
        snakemake.output.dataset,
        params=snakemake.params.preprocess,
        seed=snakemake.params.seed,
        session=snakemake.params.get("session"),
        area=snakemake.params.area,
    )
