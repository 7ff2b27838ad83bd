#!/usr/bin/env bash
# Snakemake runs this once in the new conda environment of envs/genn.yaml (--sdm conda).
exec bash "${SPIKESCALE_REPO:?set by the workflow, workflow/rules/common.smk}/envs/conda_post_deploy.sh" genn
