#!/usr/bin/env bash
# Snakemake runs this once in the new conda environment of envs/spinnaker.yaml (--sdm conda).
exec bash "${SPIKESCALE_REPO:?set by the workflow, workflow/rules/common.smk}/envs/conda_post_deploy.sh" spinnaker
