# spikescale: scaling experiments of spiking network simulators (PD14 on NEST, ...).
# config -> plan -> simulate (one job per run) -> one HDF5 file per run -> collect -> analysis.
# Choose the campaign with `--config experiment=<name>`; see README.md.

from pathlib import Path


# The repository's config/ is found wherever snakemake is started (--directory may differ).
configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


# `snakemake --report results/<campaign>/report.html`: figures, tables and provenance.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/community.smk"
include: "workflow/rules/advisor.smk"


localrules:
    all,
    plan,
    collect,
    strong_scaling,
    weak_scaling,
    rtf_energy,
    phase_breakdown,
    bennch_export,
    reference_ensemble,
    recipe,
    community_entry,
    community_table,
    advisor,
    validate_run,
    validation_figure,


rule all:
    """The whole campaign: every run, the campaign store and the scaling analysis."""
    input:
        campaign_outputs() + COMMUNITY_OUTPUTS + COMPARE_OUTPUTS + ADVISOR_OUTPUTS,
    default_target: True
