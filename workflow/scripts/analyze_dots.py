"""Snakemake job: dot selectivity and tuning of every compact model, and the dot detector's ablation."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.analysis.dots import dots_job
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    dots_job(
        model_tables=list(snakemake.input.models),
        stimulus_sets=list(snakemake.input.stimulus_sets),
        truths=list(snakemake.input.truths),
        selectivity_output=snakemake.output.selectivity,
        tuning_output=snakemake.output.tuning,
        ablation_output=snakemake.output.ablation,
        threshold=snakemake.params.analysis["dot_threshold"],
        key_channels=snakemake.params.analysis["key_channels"],
    )
