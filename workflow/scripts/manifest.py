"""Snakemake job of rule `manifest`: results/<dataset>/MANIFEST, the sha256 of every output with the config and the
software."""

from compactcortex.jobs.summary import manifest
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]):
    manifest(output=snakemake.output.manifest, config=snakemake.params.config)
