"""Snakemake job of rule `analyze_dots`: dot selectivity and tuning of every compact model, and the dot detector's
ablation."""

from compactcortex.jobs.figures import analyze_dots
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    analyze_dots(
        model_tables=list(snakemake.input.models),
        stimulus_sets=list(snakemake.input.stimulus_sets),
        truths=list(snakemake.input.truths),
        selectivity_output=snakemake.output.selectivity,
        tuning_output=snakemake.output.tuning,
        ablation_output=snakemake.output.ablation,
        threshold=snakemake.params.analysis["dot_threshold"],
        key_channels=snakemake.params.analysis["key_channels"],
    )
