# One rule per backend, software variant and resource shape (nodes x tasks per node x
# threads per task). The SLURM executor puts the ready jobs of one rule into one job array
# and gives every task the FIRST job's resources, so runs that differ in resources or
# software must never share a rule: here they cannot. The run id starts with backend,
# variant (in a campaign of several) and shape (spikescale.plan.run_id_prefix), which
# selects the rule.

for (_backend, _variant, _nodes, _tasks, _threads), _example in RUN_SHAPES.items():

    rule:
        name:
            simulate_rule_name(_backend, _variant, _nodes, _tasks, _threads)
        output:
            run=f"{RESULTS}/runs/{{run_id}}.h5",
        log:
            f"{RESULTS}/logs/simulate/{{run_id}}.log",
        wildcard_constraints:
            run_id=re.escape(run_id_prefix(_backend, _variant, _nodes, _tasks, _threads)) + RUN_ID_TAIL,
        params:
            # the run's command: set-up, MPI launcher, interpreter and harness with its arguments
            command=lambda wildcards, output: COMMANDS.command(run_of(wildcards), output.run),
            spec=lambda wildcards: run_of(wildcards).spec_json(),
            failed_dir=f"{RESULTS}/failed",
        threads: cores_requested(_example.spec(), CAMPAIGN.machine)
        resources:
            **run_resources(_example, CAMPAIGN.machine, software_entry(CAMPAIGN, _example)),
        conda:
            f"../../{conda_file(software_entry(CAMPAIGN, _example), _backend)}"
        message:
            "run {wildcards.run_id}"
        shell:
            # Loop variables must not appear here: Snakemake evaluates this again when the
            # job runs, after the loop has moved on. The supervisor records attempts that
            # are ended from outside (scancel, time limit, lost node): spikescale/supervise.py.
            supervised_run_shell(CAMPAIGN.machine)
