# The two commands of the README: `make run` and `make test`. Both install into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.yaml
CORES ?= 2
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) --configfile $(CONFIG)

.PHONY: install run dry-run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

DATASET = $$($(BIN)/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["dataset"])' $(CONFIG))

run: install
	$(SNAKEMAKE)
	$(SNAKEMAKE) --report results/$(DATASET)/report.html
	@echo "Summary: results/$(DATASET)/summary.json"
	@echo "Report:  results/$(DATASET)/report.html"

dry-run: install
	$(SNAKEMAKE) --dry-run

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m compactcortex.bench
	$(BIN)/python -m compactcortex.bench_ensemble
	$(BIN)/python -m compactcortex.bench_compact
	$(BIN)/python -m compactcortex.bench_synthesis

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
