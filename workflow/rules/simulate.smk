# One rule per backend and resource shape (nodes x tasks per node x threads per task).
# The SLURM executor puts the ready jobs of one rule into one job array and gives every
# task the FIRST job's resources, so runs that differ in resources must never share a rule:
# here they cannot. The run id starts with backend and shape, which selects the rule.

for _backend, _nodes, _tasks, _threads in RUN_SHAPES:
    _example = RUN_SHAPES[(_backend, _nodes, _tasks, _threads)]

    rule:
        name:
            f"simulate_{_backend}_n{_nodes}x{_tasks}x{_threads}"
        output:
            run=f"{RESULTS}/runs/{{run_id}}.h5",
        log:
            f"{RESULTS}/logs/simulate/{{run_id}}.log",
        wildcard_constraints:
            run_id=f"{re.escape(f'{_backend}-n{_nodes}x{_tasks}x{_threads}-')}[A-Za-z0-9.-]+",
        params:
            # the run's command: set-up, MPI launcher, interpreter and harness with its arguments
            command=lambda wildcards, output: COMMANDS.command(run_of(wildcards), output.run),
            spec=lambda wildcards: run_of(wildcards).spec_json(),
            failed_dir=f"{RESULTS}/failed",
        threads: cores_requested(_example.spec(), CAMPAIGN.machine)
        resources:
            **run_resources(_example, CAMPAIGN.machine),
        conda:
            f"../../envs/{_backend}.yaml"
        message:
            "run {wildcards.run_id}"
        shell:
            # Loop variables must not appear here: Snakemake evaluates this again when the
            # job runs, after the loop has moved on. The supervisor records attempts that
            # are ended from outside (scancel, time limit, lost node): spikescale/supervise.py.
            supervised_run_shell(CAMPAIGN.machine)
