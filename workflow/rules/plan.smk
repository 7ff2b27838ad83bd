rule plan:
    """Write the campaign's run table (one row per run, with its stable id) and the
    resolved configuration. Re-written only when the plan or configuration changes."""
    output:
        plan=f"{RESULTS}/plan.csv",
        config=f"{RESULTS}/config_resolved.json",
    params:
        # a digest, not the table: stored by Snakemake to notice a changed plan
        digest=lambda wildcards: __import__("hashlib").sha256(
            json.dumps([sorted(RUNS), CAMPAIGN.resolved()], sort_keys=True).encode()
        ).hexdigest(),
    log:
        f"{RESULTS}/logs/plan.log",
    resources:
        mem_mb=500,
        runtime=5,
    run:
        from spikescale.plan import write_plan_csv

        write_plan_csv(list(RUNS.values()), output.plan)
        Path(output.config).write_text(
            json.dumps({"files": CAMPAIGN.files, **CAMPAIGN.resolved()}, indent=2, sort_keys=True)
        )
        Path(log[0]).write_text(f"planned {len(RUNS)} runs of campaign {CAMPAIGN.name}\n")
