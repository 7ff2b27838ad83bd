"""How each planned run becomes a job: its command line, its context and its resources.

The workflow's rules (workflow/rules/*.smk), the tests and the benchmarks all build run
commands through this module, so a run started by hand in a test is started exactly as the
workflow starts it. Rules stay thin: they only name files and call these functions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from spikescale.allocation import gpus_per_node_asked
from spikescale.config import Campaign
from spikescale.plan import Run
from spikescale.resources import estimated_memory_mb, launch_command, slurm_resources
from spikescale.software import python_command, setup_command

# The machine settings that change what a run measures (not its description): part of every
# run's context, so that changing one re-runs the runs. Not `disturbance`: its threshold only
# judges what a run measured, and collect applies it (store._judge_disturbance), so changing
# it re-runs nothing. `pinning` is set in the run itself (placement.apply_pinning) and changes
# where its threads run.
MACHINE_CONTEXT_KEYS = ("name", "executor", "cores_per_node", "memory_per_node_mb", "exclusive",
                        "allow_oversubscription", "energy", "pinning")

# The shell command of every simulate rule: the supervisor (spikescale/supervise.py) starts
# the run's own command and records attempts ended from outside (scancel, time limit, lost node).
def supervised_run_shell(machine: dict) -> str:
    """The shell command of the simulate rules. The number of launch retries is written into
    it rather than passed as a Snakemake parameter: a new parameter would count as a changed
    one and re-run every finished run of an existing campaign (profiles/default)."""
    return ("python -m spikescale.supervise --spec {params.spec:q} --out {output.run:q}"
            " --failed-dir {params.failed_dir:q} --log {log:q}"
            f" --launch-retries {launch_retries(machine)} -- bash -c {{params.command:q}}")


def launch_retries(machine: dict) -> int:
    """Tries more after a launch failure: the machine's slurm.launch_retries (none without
    SLURM: locally there is no launcher between the supervisor and the run)."""
    return int(machine["slurm"]["launch_retries"]) if machine["executor"] == "slurm" and "slurm" in machine else 0

Shape = tuple[str, str, int, int, int]  # backend, variant, nodes, tasks per node, threads per task


def prepare_job_environment(repo_root: Path, interpreter: str = sys.executable,
                            environ: dict | None = None) -> None:
    """Set up the environment the workflow's jobs inherit. Every rule's shell says plain
    ``python``: under ``--sdm conda`` Snakemake activates the rule's declared environment and
    that is its python; otherwise it is the interpreter running Snakemake (the workflow's
    environment), put first on PATH here. SPIKESCALE_REPO tells the conda environments'
    post-deploy scripts (envs/conda_post_deploy.sh) which clone's spikescale to install."""
    environ = os.environ if environ is None else environ
    folder = str(Path(interpreter).parent)
    path = environ.get("PATH", "")
    if path.split(os.pathsep)[0] != folder:
        environ["PATH"] = os.pathsep.join([folder, path]) if path else folder
    environ["SPIKESCALE_REPO"] = str(repo_root)


def shape_of(run: Run) -> Shape:
    """The software and resources that put a run into a rule (and so a SLURM job array) of
    its own: a job array never mixes software variants or resources."""
    return (run.backend, run.variant, run.nodes, run.tasks_per_node, run.threads_per_task)


def simulate_rule_name(backend: str, variant: str, nodes: int, tasks: int, threads: int) -> str:
    """simulate_<backend>[_<variant>]_n<nodes>x<tasks>x<threads>: a Python name (a variant's
    '.' and '-' become '_'; the run ids, not the names, select a rule)."""
    variant_part = re.sub(r"[^A-Za-z0-9_]", "_", variant) + "_" if variant else ""
    return f"simulate_{backend}_{variant_part}n{nodes}x{tasks}x{threads}"


def software_entry(campaign: Campaign, run: Run) -> dict:
    """A run's software entry: its variant's; a run without a variant (a campaign with one
    software file, or a member of the NEST reference ensemble) takes the first variant that
    has its backend."""
    variant = run.variant or campaign.variants_of(run.backend)[0]
    return campaign.entry(run.backend, variant)


def shapes(runs: Iterable[Run]) -> dict[Shape, Run]:
    """One representative run per shape (the first by run id): what a rule needs to fix its
    resources and launcher."""
    out: dict[Shape, Run] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        out.setdefault(shape_of(run), run)
    return out


def run_context(campaign: Campaign, run: Run) -> dict:
    """What a run needs to know besides its spec: its software entry and the machine
    settings that change what it measures."""
    machine = {key: campaign.machine[key] for key in MACHINE_CONTEXT_KEYS if key in campaign.machine}
    if "outlet" in machine.get("energy", {}):
        # applied at collect (spikescale.energy.outlet): correcting it must not re-run every run
        machine["energy"] = {key: value for key, value in machine["energy"].items() if key != "outlet"}
    if run.backend == "spinnaker" and "spinnaker" in campaign.machine:
        # the board or its emulation: only SpiNNaker runs depend on (and re-run for) it
        machine["spinnaker"] = campaign.machine["spinnaker"]
    software = software_entry(campaign, run)
    if gpus_per_node_asked(software, campaign.machine):
        # what a GPU run asks for and checks it got: only GPU runs depend on (and re-run for) it
        machine.update({key: campaign.machine[key] for key in ("gpus_per_node", "gpu_type") if key in campaign.machine})
    return {"software": software, "machine": machine}


def harness_argv(python: str | Path, spec: dict, out: str | Path, context: dict | None = None) -> list[str]:
    """The harness's own command line (without set-up or MPI launcher)."""
    return [str(python), "-m", "spikescale.harness", "--spec", json.dumps(spec, sort_keys=True),
            "--context", json.dumps(context or {}, sort_keys=True), "--out", str(out)]


def harness_prefix(campaign: Campaign, run: Run, repo_root: Path) -> str:
    """Shell words starting a run's harness: environment set-up, MPI launcher, interpreter."""
    software = software_entry(campaign, run)
    setup, launch = setup_command(software, run.backend), launch_command(run.spec(), campaign.machine)
    return f"{setup}{launch} {python_command(software, run.backend, repo_root)} -m spikescale.harness".lstrip()


class RunCommands:
    """The whole shell command of each run of a campaign. The parts every run of a shape
    (harness prefix, context) shares are put together once, not again for each of a
    campaign's 10,000 jobs."""

    def __init__(self, campaign: Campaign, runs: Iterable[Run], repo_root: Path):
        representatives = shapes(runs)
        self._prefix = {shape: harness_prefix(campaign, run, repo_root) for shape, run in representatives.items()}
        self._context = {shape: shlex.quote(json.dumps(run_context(campaign, run), sort_keys=True))
                         for shape, run in representatives.items()}

    def command(self, run: Run, out: str | Path) -> str:
        """The run's command: its context (software entry, machine) is part of it, so that
        changing either re-runs the run."""
        shape = shape_of(run)
        return (f"{self._prefix[shape]} --spec {shlex.quote(run.spec_json())} "
                f"--context {self._context[shape]} --out {shlex.quote(str(out))}")


def run_resources(run: Run, machine: dict, software: dict | None = None) -> dict:
    """Snakemake resources of a run: its memory and walltime locally, its full sbatch request
    (nodes, tasks, CPUs per task, GPUs of a GPU run, partition, ...) on SLURM. ``software``:
    the run's software entry (software_entry), which says whether it uses GPUs."""
    if machine["executor"] == "slurm":
        return slurm_resources(run.spec(), machine, gpus_per_node_asked(software, machine))
    return {"mem_mb": estimated_memory_mb(run.spec()), "runtime": machine["walltime_max_min"]}
