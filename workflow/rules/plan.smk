rule plan:
    """Write the campaign's run table (one row per run, with its stable id) and the
    resolved configuration. Re-written only when the plan or configuration changes."""
    output:
        plan=f"{RESULTS}/plan.csv",
        config=report(f"{RESULTS}/config_resolved.json", caption="../report/config.rst", category="Provenance",
                      labels={"file": "resolved configuration"}),
    params:
        # a digest, not the table: Snakemake stores it to notice a changed plan
        digest=PLAN_DIGEST,
        experiment=SETTINGS.experiment,
        config_dir=CONFIG_DIR,
    log:
        f"{RESULTS}/logs/plan.log",
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.plan --experiment {params.experiment:q} --config-dir {params.config_dir:q}"
        " --out-plan {output.plan:q} --out-config {output.config:q} 2>&1 | tee {log:q}"
