rule strong_scaling:
    """Strong-scaling table and figure: time per phase (stacked), real-time factor,
    speedup and parallel efficiency, mean and spread over seeds and repetitions."""
    input:
        runs=f"{RESULTS}/runs.csv",
    output:
        table=report(f"{RESULTS}/analysis/strong_scaling.csv", caption="../report/strong_scaling_table.rst",
                     category="Scaling", labels={"figure": "strong scaling", "kind": "table"}),
        png=report(f"{RESULTS}/analysis/strong_scaling.png", caption="../report/strong_scaling.rst",
                   category="Scaling", labels={"figure": "strong scaling", "kind": "figure"}),
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
        "python -m spikescale.analysis.strong_scaling --runs {input.runs:q} --table {output.table:q}"
        " --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"


rule weak_scaling:
    """Weak-scaling table and figure: time per phase as the model grows with the
    resources, the ideal flat line, weak-scaling efficiency, and the mean rate per point
    (growing PD14 changes its dynamics)."""
    input:
        runs=f"{RESULTS}/runs.csv",
    output:
        table=report(f"{RESULTS}/analysis/weak_scaling.csv", caption="../report/weak_scaling_table.rst",
                     category="Scaling", labels={"figure": "weak scaling", "kind": "table"}),
        png=report(f"{RESULTS}/analysis/weak_scaling.png", caption="../report/weak_scaling.rst",
                   category="Scaling", labels={"figure": "weak scaling", "kind": "figure"}),
        pdf=f"{RESULTS}/analysis/weak_scaling.pdf",
    log:
        f"{RESULTS}/logs/weak_scaling.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.weak_scaling --runs {input.runs:q} --table {output.table:q}"
        " --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"


rule rtf_energy:
    """Real-time factor against energy per synaptic event, beside the community's published
    full-scale results; runs whose energy is unavailable are shown at their RTF with the
    reason (docs/analysis.md)."""
    input:
        runs=f"{RESULTS}/runs.csv",
    output:
        table=report(f"{RESULTS}/analysis/rtf_energy.csv", caption="../report/rtf_energy_table.rst",
                     category="Energy", labels={"figure": "RTF vs energy", "kind": "table"}),
        png=report(f"{RESULTS}/analysis/rtf_energy.png", caption="../report/rtf_energy.rst",
                   category="Energy", labels={"figure": "RTF vs energy", "kind": "figure"}),
        pdf=f"{RESULTS}/analysis/rtf_energy.pdf",
    log:
        f"{RESULTS}/logs/rtf_energy.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.rtf_energy --runs {input.runs:q} --table {output.table:q}"
        " --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"


rule phase_breakdown:
    """NEST's simulation time per resource shape split by its kernel timers (update, deliver,
    communicate, synchronize, other) as beNNch-plot draws it; runs of a NEST without detailed
    timers show t_sim unresolved, and the figure says so (docs/analysis.md#phase-breakdown-campaigns-with-nest-runs)."""
    input:
        runs=f"{RESULTS}/runs.csv",
        h5=f"{RESULTS}/campaign.h5",
    output:
        table=report(f"{RESULTS}/analysis/phase_breakdown.csv", caption="../report/phase_breakdown_table.rst",
                     category="Scaling", labels={"figure": "NEST phase breakdown", "kind": "table"}),
        png=report(f"{RESULTS}/analysis/phase_breakdown.png", caption="../report/phase_breakdown.rst",
                   category="Scaling", labels={"figure": "NEST phase breakdown", "kind": "figure"}),
        pdf=f"{RESULTS}/analysis/phase_breakdown.pdf",
    log:
        f"{RESULTS}/logs/phase_breakdown.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.phase_breakdown --runs {input.runs:q} --campaign-h5 {input.h5:q}"
        " --table {output.table:q} --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"


rule bennch_export:
    """The campaign in beNNch-plot's CSV columns (time_simulate, time_construction_create,
    ...), so that beNNch-plot can plot it; the mapping is in docs/analysis.md."""
    input:
        h5=f"{RESULTS}/campaign.h5",
    output:
        csv=report(f"{RESULTS}/analysis/bennch.csv", caption="../report/bennch.rst", category="Runs",
                   labels={"table": "beNNch-plot export"}),
    log:
        f"{RESULTS}/logs/bennch_export.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.bennch_export --campaign-h5 {input.h5:q} --out {output.csv:q}"
        " 2>&1 | tee {log:q}"
