"""Does the way Snakemake was started fit the campaign's machine? Checked in the workflow's
`onstart` hook: after the DAG is built, before the first job is submitted.

Each problem found here would otherwise cost a hung or wasted campaign:
- a SLURM machine run without the SLURM executor (or a local machine with it): the runs
  would start their ranks with srun outside any job, or land on compute nodes with the
  local machine's settings;
- a cluster without accounting polled with sacct (the executor's default whenever sacct
  exists): sacct fails and Snakemake waits forever for jobs that have ended;
- job arrays with fewer job slots (--jobs) than runs to do: snakemake-executor-plugin-slurm
  2.8 silently drops a batch of ready jobs that is smaller than the rule's ready count,
  and Snakemake then waits forever for jobs that were never submitted
  (snakemake/snakemake-executor-plugin-slurm#473). When every run fits in one round, each
  resource shape is handed over, and submitted as one array, at once.
"""

from __future__ import annotations


def executor_problems(machine: dict, machine_file: str, executor: str, array_jobs: str | None,
                      status_command: str | None, jobs_limit: int | None, runs_to_do: int) -> list[str]:
    """Messages for each way the Snakemake settings do not fit the machine; empty if none."""
    found = []
    on_slurm = machine["executor"] == "slurm"
    if on_slurm and executor != "slurm":
        found.append(f"{machine_file}: executor = 'slurm': machine {machine['name']!r} runs its campaigns "
                     f"through SLURM, but Snakemake uses the {executor!r} executor; start it with "
                     "--profile profiles/slurm (or your copy of it)")
    if not on_slurm and executor == "slurm":
        found.append(f"{machine_file}: executor = {machine['executor']!r}: machine {machine['name']!r} is not a "
                     "SLURM machine, but Snakemake uses the SLURM executor; choose a SLURM machine file "
                     "(config/machine/slurm-generic.yaml is an example) or drop the SLURM profile")
    if executor != "slurm":
        return found
    if not machine.get("slurm", {}).get("accounting", True) and status_command != "squeue":
        found.append(f"{machine_file}: slurm.accounting = false, but the SLURM executor polls job states with "
                     f"{status_command or 'its default (sacct)'}, which fails without accounting and leaves "
                     "Snakemake waiting forever; set `slurm-status-command: squeue` in the profile")
    if array_jobs and jobs_limit is not None and jobs_limit < runs_to_do:
        found.append(f"job arrays are on (slurm-array-jobs: {array_jobs}) but --jobs is {jobs_limit}, below the "
                     f"{runs_to_do} runs to do: snakemake-executor-plugin-slurm 2.8 then drops ready jobs and "
                     "waits forever (snakemake-executor-plugin-slurm#473); set `jobs` in the profile to at "
                     f"least {runs_to_do}, or turn job arrays off")
    return found
