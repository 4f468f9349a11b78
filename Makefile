# The two commands of the README: `make run` and `make test`. Both install into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.yaml
CORES ?= 2
SNAKEMAKE := $(BIN)/snakemake --workflow-profile profiles/default --cores $(CORES) --configfile $(CONFIG)

.PHONY: install run dry-run plan test test-slurm bench lint verify clean

# pip byte-compiles what it installs one file at a time; compileall does it on every core (a third of the install's
# time on 2 cores), leaving out what nothing here imports (the packages' own tests, torch's compiler back end: a third
# of the files), and compiles this package too: where PYTHONDONTWRITEBYTECODE is set, no process caches what it
# compiles, so every job would compile every module it imports. Byte-compiling is only a cache, so a file that does
# not compile (a template) changes nothing.
COMPILE_SKIP := /tests?/|/_inductor/|/onnx/backend/test/
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 -x '$(COMPILE_SKIP)' $(VENV)/lib workflow > /dev/null || true
	touch $(STAMP)

install: $(STAMP)

DATASET = $$($(BIN)/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["dataset"])' $(CONFIG))

run: install
	$(SNAKEMAKE)
	$(SNAKEMAKE) --report results/$(DATASET)/report.html
	@echo "Summary: results/$(DATASET)/summary.json"
	@echo "Report:  results/$(DATASET)/report.html"

# Rerun the whole pipeline from the raw data into a fresh folder and compare it with results/<dataset>/MANIFEST.
VERIFY_DIR ?= $(CURDIR)/.verify
verify: install
	rm -rf $(VERIFY_DIR) && mkdir -p $(VERIFY_DIR)
	$(BIN)/snakemake --snakefile $(CURDIR)/Snakefile --directory $(VERIFY_DIR) --workflow-profile $(CURDIR)/profiles/default --cores $(CORES) --configfile $(abspath $(CONFIG))
	$(BIN)/python -m compactcortex.io.manifest results/$(DATASET)/MANIFEST $(VERIFY_DIR)/results/$(DATASET)

dry-run: install
	$(SNAKEMAKE) --dry-run

# What CONFIG asks of a cluster before anything runs: jobs, GPU-hours, memory and disk per rule, against the limits.
plan: install
	$(BIN)/python -m compactcortex.plan $(CONFIG)

# One pytest process per core (pytest-xdist); the tiny run the end-to-end tests share is made once (tests/conftest.py).
test: install
	$(BIN)/python -m pytest -n $(CORES) -m "not slurm"

# The pipeline on a real one-node SLURM cluster that the test starts and stops (needs slurm-wlm, munge and root).
test-slurm: install
	$(BIN)/python -m pytest -m slurm -rs

bench: install
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_ensemble.py
	$(BIN)/python benchmarks/bench_compact.py
	$(BIN)/python benchmarks/bench_synthesis.py
	$(BIN)/python benchmarks/bench_pool.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
