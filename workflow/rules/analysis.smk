rule strong_scaling:
    """Strong-scaling table and figure: time per phase (stacked), real-time factor,
    speedup and parallel efficiency, mean and spread over seeds and repetitions."""
    input:
        runs=f"{RESULTS}/runs.csv",
    output:
        table=f"{RESULTS}/analysis/strong_scaling.csv",
        png=f"{RESULTS}/analysis/strong_scaling.png",
        pdf=f"{RESULTS}/analysis/strong_scaling.pdf",
    log:
        f"{RESULTS}/logs/strong_scaling.log",
    params:
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        WORKFLOW_PYTHON + " -m analysis.strong_scaling --runs {input.runs:q} --table {output.table:q}"
        " --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"
