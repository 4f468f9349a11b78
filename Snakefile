# compactcortex: recordings of visual-cortex neurons -> deep ensemble -> compact models -> figures.
# This entry file only loads and validates the configuration and includes one rule file per stage.
import os
import sys
from pathlib import Path

# The one place the package's path is set: this checkout's workflow/ goes first on the path of this process and, through
# PYTHONPATH, of every job it starts (local, SLURM, conda), so the code run is always this checkout's.
PACKAGE_ROOT = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, PACKAGE_ROOT)
SEARCH_PATH = "PYTHONPATH"  # extended, never required (so not an `envvars:` of the workflow)
os.environ[SEARCH_PATH] = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get(SEARCH_PATH)]))

from compactcortex.config import validate_config  # noqa: E402
from compactcortex.provenance import CODE_VERSION_VARIABLE, code_version  # noqa: E402


configfile: Path(workflow.basedir) / "config.yaml"


report: "workflow/report/workflow.rst"


# The code version is read once per run (git) and handed to every job through the environment.
os.environ.setdefault(CODE_VERSION_VARIABLE, code_version())
config.update(validate_config(config, source="the configuration (config.yaml and --configfile/--config)"))
# A relative data path is relative to the repository (this file), wherever Snakemake runs (--directory, make verify).
if config["source"].get("path") and not Path(config["source"]["path"]).is_absolute():
    config["source"]["path"] = str((Path(workflow.basedir) / config["source"]["path"]).resolve())
for folder in config["compact"]["pool"]["folders"]:  # a pool's image folders, likewise
    folder["path"] = str((Path(workflow.basedir) / folder["path"]).resolve())


include: "workflow/rules/common.smk"
include: "workflow/rules/lab.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/compact.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/closed_loop.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        rules.summary.output,
        REPORT_ITEMS,
        rules.manifest.output,
