# Validation (analysis/validation.py): every run that records spikes is compared with a NEST
# reference ensemble of the same model. The ensemble is simulated once per model, seeds,
# shape and machine under results/_reference/ and shared by the campaigns that agree on them.

if VALIDATED:
    _reference_example = next(iter(REFERENCE_RUNS.values()))

    rule simulate_reference:
        """One member of the NEST reference ensemble (spikes recorded, correct model)."""
        output:
            run=f"{REFERENCE}/runs/{{run_id}}.h5",
        log:
            f"{REFERENCE}/logs/simulate/{{run_id}}.log",
        params:
            command=lambda wildcards, output: COMMANDS.command(REFERENCE_RUNS[wildcards.run_id], output.run),
            spec=lambda wildcards: REFERENCE_RUNS[wildcards.run_id].spec_json(),
            failed_dir=f"{REFERENCE}/failed",
        threads: cores_requested(_reference_example.spec(), CAMPAIGN.machine)
        resources:
            **run_resources(_reference_example, CAMPAIGN.machine),
        conda:
            "../../envs/nest.yaml"
        message:
            "reference run {wildcards.run_id}"
        shell:
            supervised_run_shell(CAMPAIGN.machine)

    rule reference_ensemble:
        """Spike statistics of every reference member and the KS distances between all
        member pairs: the model's own seed-to-seed spread."""
        input:
            runs=[f"{REFERENCE}/runs/{run_id}.h5" for run_id in sorted(REFERENCE_RUNS)],
        output:
            h5=f"{REFERENCE}/ensemble.h5",
        log:
            f"{REFERENCE}/logs/ensemble.log",
        params:
            key=Path(REFERENCE).name,
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/workflow.yaml"
        shell:
            "python -m spikescale.analysis.validation reference --key {params.key:q} --out {output.h5:q}"
            " {input.runs:q} 2>&1 | tee {log:q}"

    rule validate_run:
        """One run's statistics against the reference ensemble: valid, invalid (what lies
        outside the spread) or not checked (why)."""
        input:
            run=f"{RESULTS}/runs/{{run_id}}.h5",
            reference=f"{REFERENCE}/ensemble.h5",
        output:
            json=f"{RESULTS}/validation/{{run_id}}.json",
        log:
            f"{RESULTS}/logs/validation/{{run_id}}.log",
        params:
            max_outside=CAMPAIGN.experiment["validation"]["max_outside"],
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/workflow.yaml"
        shell:
            "python -m spikescale.analysis.validation check --run {input.run:q} --reference {input.reference:q}"
            " --out {output.json:q} --max-outside {params.max_outside} 2>&1 | tee {log:q}"

    rule validation_figure:
        """Validation table and figure: per population, the runs' rates beside the
        reference's, and their KS distances against the reference's own spread."""
        input:
            runs=f"{RESULTS}/runs.csv",
            checks=validation_files(),
            reference=f"{REFERENCE}/ensemble.h5",
        output:
            table=report(f"{RESULTS}/analysis/validation.csv", caption="../report/validation_table.rst",
                         category="Validation", labels={"figure": "validation", "kind": "table"}),
            png=report(f"{RESULTS}/analysis/validation.png", caption="../report/validation.rst",
                       category="Validation", labels={"figure": "validation", "kind": "figure"}),
            pdf=f"{RESULTS}/analysis/validation.pdf",
        log:
            f"{RESULTS}/logs/validation_figure.log",
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/workflow.yaml"
        shell:
            "python -m spikescale.analysis.validation_figure --runs {input.runs:q} --reference {input.reference:q}"
            " --table {output.table:q} --png {output.png:q} --pdf {output.pdf:q} {input.checks:q} 2>&1 | tee {log:q}"
