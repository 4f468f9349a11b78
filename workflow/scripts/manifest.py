"""Snakemake job: results/<dataset>/MANIFEST, the sha256 of every output with the config and the software."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the compactcortex package of this checkout

from compactcortex.manifest import write_manifest
from compactcortex.rule_logging import logging_to

with logging_to(snakemake.log[0]) as log:
    results = Path(snakemake.output.manifest).parent  # results/<dataset>
    path = write_manifest(results, snakemake.params.config)
    log.info("wrote %s", path)
