#!/usr/bin/env bash
# The second half of a conda environment for `snakemake --sdm conda`: the pinned packages of
# envs/<name>.txt (one source of versions for venvs and conda environments alike) and
# spikescale itself, editable and without dependencies, as `make env` installs it into each
# venv. Run by envs/<name>.post-deploy.sh inside the activated environment; the workflow
# exports SPIKESCALE_REPO (workflow/rules/common.smk).
set -euo pipefail
name="${1:?usage: conda_post_deploy.sh <environment name in envs/>}"
repo="${SPIKESCALE_REPO:?set by the workflow}"
python -m pip install --quiet -r "$repo/envs/$name.txt"
python -m pip install --quiet --no-deps -e "$repo"
python -c "import spikescale" # the environment can run the workflow's modules
