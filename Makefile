# spikescale: `make run` runs the default campaign, `make test` runs every test.
# Both build what they need first: one virtual environment per backend (envs/<name>.txt)
# plus one for the workflow itself, under .venvs/ (ignored by git).

PYTHON ?= python3
VENVS := .venvs
WORKFLOW_ENV := $(VENVS)/workflow
NEST_ENV := $(VENVS)/nest
SNAKEMAKE := $(WORKFLOW_ENV)/bin/snakemake
CORES ?= all
EXPERIMENT ?= default
SNAKEMAKE_ARGS ?=

.PHONY: env run test lint benchmark retry-failed clean-envs help

help:
	@echo "make run        build environments, run the default campaign locally (results/default/)"
	@echo "make test       build environments, run every test"
	@echo "make lint       snakemake --lint"
	@echo "make benchmark  harness overhead and the INM-6 reference comparison (tests/benchmarks/)"
	@echo "make run EXPERIMENT=<name>    run config/experiment/<name>.yaml"
	@echo "make retry-failed EXPERIMENT=<name>   set failed run records aside (results/<name>/failed/) and run them again"

# A stamp per environment, rebuilt when its requirements change.
$(VENVS)/%/.installed: envs/%.txt
	rm -rf $(VENVS)/$*
	$(PYTHON) -m venv $(VENVS)/$*
	$(VENVS)/$*/bin/python -m pip install --quiet --upgrade pip
	$(VENVS)/$*/bin/python -m pip install --quiet -r $<
	touch $@

env: $(WORKFLOW_ENV)/.installed $(NEST_ENV)/.installed

run: env
	$(SNAKEMAKE) --cores $(CORES) --config experiment=$(EXPERIMENT) --printshellcmds $(SNAKEMAKE_ARGS)

test: env
	$(WORKFLOW_ENV)/bin/python -m pytest tests

lint: env
	$(SNAKEMAKE) --lint

benchmark: env
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/harness_overhead.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/reference_comparison.py

retry-failed: env
	PYTHONPATH=workflow:. $(WORKFLOW_ENV)/bin/python -m spikescale.retry results/$(EXPERIMENT)
	$(SNAKEMAKE) --cores $(CORES) --config experiment=$(EXPERIMENT) $(SNAKEMAKE_ARGS)

clean-envs:
	rm -rf $(VENVS)
