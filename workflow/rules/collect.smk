rule collect:
    """Merge the campaign's run files into campaign.h5 and the summary runs.csv. Failed
    runs are kept with their error; a file that is not a complete record is set aside."""
    input:
        plan=f"{RESULTS}/plan.csv",
        config=f"{RESULTS}/config_resolved.json",
        runs=lambda wildcards: run_files(),
        checks=lambda wildcards: validation_files(),
    output:
        h5=f"{RESULTS}/campaign.h5",
        csv=report(f"{RESULTS}/runs.csv", caption="../report/runs.rst", category="Runs", labels={"table": "runs"}),
    log:
        f"{RESULTS}/logs/collect.log",
    params:
        campaign=CAMPAIGN.name,
        runs_dir=lambda wildcards, input: str(Path(input.runs[0]).parent),
        validation=f"--validation-dir {shlex.quote(f'{RESULTS}/validation')}" if VALIDATED else "",
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.store collect --campaign {params.campaign:q} --plan {input.plan:q}"
        " --runs-dir {params.runs_dir:q} --config {input.config:q} --out-h5 {output.h5:q}"
        " --out-csv {output.csv:q} {params.validation} 2>&1 | tee {log:q}"
