rule simulate_run:
    """Run one run of the plan with its backend's harness and write its HDF5 record.
    A run that fails still writes a record (status failed, with the error); a run that is
    killed leaves no run file, so the next invocation redoes it."""
    output:
        run=f"{RESULTS}/runs/{{run_id}}.h5",
    log:
        f"{RESULTS}/logs/simulate/{{run_id}}.log",
    params:
        spec=lambda wildcards: run_of(wildcards).spec_json(),
        context=lambda wildcards: json.dumps(run_context(run_of(wildcards)), sort_keys=True),
        python=lambda wildcards: python_prefix(
            CAMPAIGN.software[run_of(wildcards).backend], run_of(wildcards).backend, REPO
        ),
    threads: lambda wildcards: cores_requested(run_of(wildcards).spec(), CAMPAIGN.machine)
    resources:
        mem_mb=lambda wildcards: estimated_memory_mb(run_of(wildcards).spec()),
        runtime=CAMPAIGN.machine["walltime_max_min"],
    conda:
        "../../envs/nest.yaml"
    shell:
        "{params.python} -m spikescale.harness --spec {params.spec:q} --context {params.context:q}"
        " --out {output.run:q} 2>&1 | tee {log:q}"
