# spikescale: `make run` runs the default campaign, `make test` runs every test.
# Both build what they need first: one virtual environment per backend (envs/<name>.txt)
# plus one for the workflow itself, under .venvs/ (ignored by git).

PYTHON ?= python3
VENVS := .venvs
WORKFLOW_ENV := $(VENVS)/workflow
NEST_ENV := $(VENVS)/nest
BRIAN2_ENV := $(VENVS)/brian2
SPINNAKER_ENV := $(VENVS)/spinnaker
GENN_ENV := $(VENVS)/genn
SNAKEMAKE := $(WORKFLOW_ENV)/bin/snakemake
CORES ?= all
EXPERIMENT ?= default
SNAKEMAKE_ARGS ?=

# Debian packages the MPI build and the MPI and SLURM tests need, accounting (slurmdbd on MariaDB)
# included, and hwloc-nox, whose lstopo-no-graphics records each node's topology with every run
# (`make system-deps` installs them as root)
SYSTEM_PACKAGES := build-essential cmake openmpi-bin libopenmpi-dev libgsl-dev libboost-dev libltdl-dev slurm-wlm munge \
	slurmdbd mariadb-server hwloc-nox

.PHONY: brian2genn-env genn env run report test lint benchmark benchmark-full-scale retry-failed clean-envs help system-deps nest-mpi slurm-demo check compare recipe advise advisor-check

help:
	@echo "make run        build environments, run the default campaign locally and write its report (results/default/)"
	@echo "make report     the HTML report of a campaign that has run (results/<name>/report.html)"
	@echo "make test       build environments, GeNN included, run every test (in CI, CI=true: a missing environment fails)"
	@echo "make test-quick the tests that need no simulator, no root and run no campaign; only .venvs/workflow (docs/testing.md)"
	@echo "make lint       snakemake --lint"
	@echo "make slurm-demo the slurm_test campaign on a two-node test SLURM cluster started here and stopped after (root)"
	@echo "make genn       GeNN 4.9.0 (for brian2genn) and the PyGeNN 5.4.0 wheel built once into ~/.cache/spikescale; .venvs/brian2genn and .venvs/genn"
	@echo "make brian2genn-env   only brian2genn's part of make genn: .venvs/brian2genn and GeNN 4.9.0"
	@echo "make nest-mpi   NEST 3.10 with MPI and detailed timers in .venvs/nest-mpi (its wheel built once into ~/.cache/spikescale, then reused)"
	@echo "make benchmark-full-scale  full-scale PD14 beside the INM-6 reference (~15 GB) and the memory model's calibration"
	@echo "make benchmark  harness overhead, INM-6 reference comparison, energy sampler overhead, a 10,000-run campaign, the SpiNNaker emulator against NEST (tests/benchmarks/)"
	@echo "make run EXPERIMENT=<name>    run config/experiment/<name>.yaml"
	@echo "make retry-failed EXPERIMENT=<name>   set failed run records aside (results/<name>/failed/) and run them again"
	@echo "make compare EXPERIMENT=<name> [COMPARE_WITH=<a>[,<b>]] [COMPARE_BY=campaign|variant|machine]  verdicts per backend and shape (docs/comparing.md)"
	@echo "make advise EXPERIMENT=<name> [SCALE=1.0] [NODE_BUDGET=16] [ADVISE_ALSO=<a>,<b>]  fitted models, predictions and advice (docs/advisor.md)"
	@echo "make advisor-check   the advisor fitted at scales <= 0.2 and checked against scale 0.4 and full scale (idle machine, ~15 GB)"
	@echo "make check EXPERIMENT=<name>  results/<name> against config/baselines/<name>.yaml: exit 1 and what regressed (docs/comparing.md)"

# Two stamps per environment: .requirements when envs/<name>.txt is installed (rebuilt from
# scratch when that file changes), .installed when the spikescale package itself is installed
# into it too, editable and without dependencies (redone, in seconds, when pyproject.toml
# changes). The rules and runs import spikescale from there, never through an edited sys.path
# or PYTHONPATH (docs/architecture.md).
$(VENVS)/%/.requirements: envs/%.txt
	rm -rf $(VENVS)/$*
	$(PYTHON) -m venv $(VENVS)/$*
	$(VENVS)/$*/bin/python -m pip install --quiet --upgrade pip
	$(VENVS)/$*/bin/python -m pip install --quiet -r $<
	touch $@

$(VENVS)/%/.installed: $(VENVS)/%/.requirements pyproject.toml
	$(VENVS)/$*/bin/python -m pip install --quiet --no-deps -e .
	touch $@

# stamps are never intermediate files to delete
.SECONDARY:

env: $(WORKFLOW_ENV)/.installed $(NEST_ENV)/.installed $(BRIAN2_ENV)/.installed $(SPINNAKER_ENV)/.installed

# GeNN is not on PyPI (README, GeNN): `make genn` builds it from its released source, once,
# into the cache outside the repository (envs/build_genn.sh), and the two environments that
# use it. `make env` leaves it out: it compiles for minutes the first time.
# brian2genn: .venvs/brian2genn from envs/brian2genn.txt, and GeNN 4.9.0 in the cache, where
# brian2genn finds it (spikescale.software.default_genn_path).
brian2genn-env: $(VENVS)/brian2genn/.installed
	PYTHON=$(PYTHON) envs/build_genn.sh genn4

# PyGeNN: .venvs/genn from envs/genn.txt plus the PyGeNN wheel (built into the cache the first
# time) and its self-test, made by the script; then the .installed rule above, as for every
# environment. This rule, being explicit, wins over the pattern rule for .requirements.
$(GENN_ENV)/.requirements: envs/genn.txt
	rm -rf $(GENN_ENV)
	PYTHON=$(PYTHON) envs/build_genn.sh pygenn
	touch $@

genn: brian2genn-env $(GENN_ENV)/.installed

# As root (CI, a fresh machine) install missing Debian packages; otherwise say what to install.
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing system packages: $$missing (apt-get install them, or build NEST with MPI another way)"; exit 1; \
	fi

# NEST 3.10 with MPI in .venvs/nest-mpi: its wheel is built once into the cache outside the
# repository and then only reinstalled (envs/build_nest_mpi.sh).
nest-mpi: system-deps
	envs/build_nest_mpi.sh

# The campaign, then its HTML report (figures, tables, provenance) in results/<name>/report.html.
run: env
	@# the environments of the campaign's software variants beyond `make env`'s (spikescale.software)
	targets=$$($(WORKFLOW_ENV)/bin/python -m spikescale.software make-targets --experiment $(EXPERIMENT)) && \
		$(MAKE) --no-print-directory $$targets
	$(SNAKEMAKE) --cores $(CORES) --config experiment=$(EXPERIMENT) --printshellcmds $(SNAKEMAKE_ARGS)
	$(MAKE) --no-print-directory report

report: env
	$(SNAKEMAKE) --config experiment=$(EXPERIMENT) --report results/$(EXPERIMENT)/report.html $(SNAKEMAKE_ARGS)
	@echo "report: results/$(EXPERIMENT)/report.html (open it in a browser)"

# Every test, then the reliability figures (faults injected by the tests, runs lost, bad
# inputs tried and accepted; tests/reliability_figures.py).
test: env nest-mpi genn
	$(WORKFLOW_ENV)/bin/python -m pytest tests
	$(WORKFLOW_ENV)/bin/python tests/reliability_figures.py

# The quick tier, the inner loop (under 2 minutes): every test without a need of the list
# (docs/testing.md). Needs only the workflow environment, not the simulators'.
QUICK_TIER := not (needs_nest or needs_brian2 or needs_genn or needs_spinnaker or needs_mpi or needs_root or slurm \
	or workflow or slow)
.PHONY: test-quick
test-quick: $(WORKFLOW_ENV)/.installed
	$(WORKFLOW_ENV)/bin/python -m pytest -m "$(QUICK_TIER)" tests

# The SLURM path to watch, as root: the two-node test cluster started, the slurm_test campaign
# run through the SLURM executor (its job arrays and allocations shown as they happen), the
# cluster stopped; results in results/slurm_test/ (tests/slurm_demo.py).
slurm-demo: env nest-mpi
	$(WORKFLOW_ENV)/bin/python tests/slurm_demo.py

lint: env
	$(SNAKEMAKE) --lint

benchmark: env
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/harness_overhead.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/reference_comparison.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/energy_sampler_overhead.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/campaign_10k.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/index_1m.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/compare_10k.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/spinnaker_emulator_vs_nest.py

# Full-scale PD14 (~15 GB, about 10 minutes here) beside the INM-6 reference, and the memory
# model's calibration (docs/full-scale.md): apart from `make benchmark`, which stays short.
benchmark-full-scale: env
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/memory_calibration.py
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/full_scale.py

# The campaign compared (docs/comparing.md): with the campaigns COMPARE_WITH=<a>[,<b>] (the
# first is the reference), or its own software variants (COMPARE_BY=variant, the default
# without COMPARE_WITH) or machines; runs what is missing, then the report with a Comparison
# section. Writes results/<name>/compare/<vs_a|by_variant|...>.{csv,png,pdf}.
COMPARE_WITH ?=
COMPARE_BY ?= $(if $(COMPARE_WITH),campaign,variant)
COMPARE_CONFIG = compare_by=$(COMPARE_BY) $(if $(COMPARE_WITH),compare_with=[$(COMPARE_WITH)])
compare: env
	targets=$$($(WORKFLOW_ENV)/bin/python -m spikescale.software make-targets --experiment $(EXPERIMENT)) && \
		$(MAKE) --no-print-directory $$targets
	$(SNAKEMAKE) --cores $(CORES) --config experiment=$(EXPERIMENT) $(COMPARE_CONFIG) $(SNAKEMAKE_ARGS)
	$(SNAKEMAKE) --config experiment=$(EXPERIMENT) $(COMPARE_CONFIG) --report results/$(EXPERIMENT)/report.html \
		$(SNAKEMAKE_ARGS)
	@echo "comparison: results/$(EXPERIMENT)/compare/ and the report's Comparison section"

# A campaign against its committed reference values, for a simulator's CI: prints each
# regression with its size and interval and exits 1; 0 when every reference is met
# (spikescale.analysis.baselines; docs/comparing.md#baselines). Only the workflow environment.
BASELINES_DIR ?= config/baselines
RESULTS_DIR ?= results
check: $(WORKFLOW_ENV)/.installed
	$(WORKFLOW_ENV)/bin/python -m spikescale.analysis.baselines $(BASELINES_DIR)/$(EXPERIMENT).yaml $(RESULTS_DIR)/$(EXPERIMENT)

# The campaign against the PD14 community's benchmarking recipe: each point met, not met or
# not checkable, with the values and the reason (spikescale.analysis.recipe). A collected
# campaign is checked on its runs; one that has not run yet on its plan (written to a temporary
# folder, nothing under results/ changes). Only the workflow environment.
recipe: $(WORKFLOW_ENV)/.installed
	@if [ -f $(RESULTS_DIR)/$(EXPERIMENT)/runs.csv ]; then \
		$(WORKFLOW_ENV)/bin/python -m spikescale.analysis.recipe $(RESULTS_DIR)/$(EXPERIMENT); \
	else \
		plan=$$(mktemp -d) && \
		$(WORKFLOW_ENV)/bin/python -m spikescale.plan --experiment $(EXPERIMENT) --config-dir config \
			--out-plan $$plan/plan.csv --out-config $$plan/config_resolved.json >/dev/null && \
		$(WORKFLOW_ENV)/bin/python -m spikescale.analysis.recipe $$plan; rc=$$?; rm -rf $$plan; exit $$rc; \
	fi

# The configuration advisor on a collected campaign (spikescale.analysis.advise; docs/advisor.md):
# fitted terms, predictions with intervals and advice for SCALE (n_scaling = k_scaling; default
# the experiment's advisor block, else its model) within NODE_BUDGET nodes (default the
# machine's), from results/<name> and the campaigns of ADVISE_ALSO=<a>[,<b>]. The campaign's
# own analysis (rule advisor) writes the same into results/<name>/analysis/advisor.*.
comma := ,
SCALE ?=
NODE_BUDGET ?=
ADVISE_ALSO ?=
advise: $(WORKFLOW_ENV)/.installed
	$(WORKFLOW_ENV)/bin/python -m spikescale.analysis.advise $(RESULTS_DIR)/$(EXPERIMENT) \
		$(foreach c,$(subst $(comma), ,$(ADVISE_ALSO)),$(RESULTS_DIR)/$(c)) \
		$(if $(SCALE),--scale $(SCALE)) $(if $(NODE_BUDGET),--node-budget $(NODE_BUDGET))

# The advisor's proof (docs/advisor.md), on an idle machine (timed runs): PD14 at scales 0.05-0.2
# (fitted) and 0.4 and full scale (held back, ~15 GB) on NEST with MPI, then the predictions of
# the held-back runs against their measurements (tests/benchmarks/advisor_holdout.py).
ADVISOR_CHECK := advisor_s0.05 advisor_s0.1 advisor_s0.15 advisor_s0.2 advisor_ranks_s0.1 advisor_ranks_s0.2 \
	advisor_holdout_s0.4 advisor_holdout_ranks_s0.4 advisor_holdout_full
advisor-check: env nest-mpi
	for e in $(ADVISOR_CHECK); do $(SNAKEMAKE) --cores $(CORES) --config experiment=$$e $(SNAKEMAKE_ARGS) || exit 1; done
	$(WORKFLOW_ENV)/bin/python tests/benchmarks/advisor_holdout.py --results $(RESULTS_DIR)

retry-failed: env
	$(WORKFLOW_ENV)/bin/python -m spikescale.retry results/$(EXPERIMENT)
	$(SNAKEMAKE) --cores $(CORES) --config experiment=$(EXPERIMENT) $(SNAKEMAKE_ARGS)

clean-envs:
	rm -rf $(VENVS)
