# Shared set-up: load and validate the campaign (nothing runs if it is invalid) and plan it.
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.basedir).resolve()
for _path in (REPO / "workflow", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.plan import plan_runs, reference_key, reference_runs
from spikescale.resources import cores_requested, estimated_memory_mb, launch_command, slurm_resources
from spikescale.software import missing_environment, python_command, setup_command

CONFIG_DIR = str(config.get("config_dir", REPO / "config"))
try:
    CAMPAIGN = load_campaign(config["experiment"], CONFIG_DIR)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

RUNS = {run.run_id: run for run in plan_runs(CAMPAIGN)}
PLAN_DIGEST = hashlib.sha256(json.dumps([sorted(RUNS), CAMPAIGN.resolved()], sort_keys=True).encode()).hexdigest()
RESULTS = f"{config.get('results_dir', 'results')}/{CAMPAIGN.name}"
# Validation: the NEST reference ensemble lives outside the campaign, so that campaigns of
# the same model share it and it is simulated once ('_' cannot start a campaign name).
VALIDATED = "validation" in CAMPAIGN.experiment
REFERENCE_RUNS = {run.run_id: run for run in reference_runs(CAMPAIGN)}
REFERENCE = f"{config.get('results_dir', 'results')}/_reference/{reference_key(CAMPAIGN)}" if VALIDATED else None
# The workflow's own interpreter runs collect and analysis; runs use their backend's.
WORKFLOW_PYTHON = "env PYTHONPATH={} {}".format(
    shlex.quote(f"{REPO}:{REPO / 'workflow'}"), shlex.quote(sys.executable)
).replace("{", "{{").replace("}", "}}")

for _backend in sorted(set(CAMPAIGN.experiment["backends"]) | ({"nest"} if VALIDATED else set())):
    _missing = missing_environment(CAMPAIGN.software[_backend], _backend, REPO)
    if _missing:
        raise WorkflowError(_missing)


wildcard_constraints:
    run_id=r"[A-Za-z0-9][A-Za-z0-9.-]*",


def run_of(wildcards):
    try:
        return RUNS[wildcards.run_id]
    except KeyError:
        raise WorkflowError(f"run {wildcards.run_id!r} is not in the plan of campaign {CAMPAIGN.name!r}")


# The machine settings that change what a run measures (not its description).
MACHINE_CONTEXT_KEYS = ("name", "executor", "cores_per_node", "memory_per_node_mb", "exclusive",
                        "allow_oversubscription", "energy")


def run_context(run):
    """What a run needs to know besides its spec: its backend's software entry and the
    machine. Passed as a parameter, so changing either re-runs the affected runs."""
    machine = {key: CAMPAIGN.machine[key] for key in MACHINE_CONTEXT_KEYS if key in CAMPAIGN.machine}
    if run.backend == "spinnaker" and "spinnaker" in CAMPAIGN.machine:
        # the board or its emulation: only SpiNNaker runs depend on (and re-run for) it
        machine["spinnaker"] = CAMPAIGN.machine["spinnaker"]
    return {"software": CAMPAIGN.software[run.backend], "machine": machine}


# One representative run spec per (backend, nodes, tasks per node, threads per task): what
# a rule needs to fix its resources and launcher.
RUN_SHAPES = {
    (run.backend, run.nodes, run.tasks_per_node, run.threads_per_task): run.spec()
    for run in sorted(RUNS.values(), key=lambda r: r.run_id)
}


def harness_command(run_spec):
    """Shell words starting a run's harness: environment set-up, MPI launcher, interpreter."""
    backend = run_spec["backend"]
    software = CAMPAIGN.software[backend]
    setup, launch = setup_command(software), launch_command(run_spec, CAMPAIGN.machine)
    return f"{setup}{launch} {python_command(software, backend, REPO)} -m spikescale.harness"


# The parts of a run's command that every run of a shape (harness command) or backend
# (context) shares: put together once, not again for each of a campaign's 10,000 jobs.
# The NEST reference runs of the validation count too: a campaign may validate a backend
# without running NEST itself.
_COMMAND_RUNS = {**REFERENCE_RUNS, **RUNS}
_COMMAND_SHAPES = {
    (run.backend, run.nodes, run.tasks_per_node, run.threads_per_task): run.spec()
    for run in sorted(_COMMAND_RUNS.values(), key=lambda r: r.run_id)
}
HARNESS_COMMANDS = {shape: harness_command(spec) for shape, spec in _COMMAND_SHAPES.items()}
CONTEXT_ARGS = {spec["backend"]: shlex.quote(json.dumps(run_context(_COMMAND_RUNS[spec["run_id"]]), sort_keys=True))
                for spec in _COMMAND_SHAPES.values()}


def run_command(run, out):
    """The whole shell command of one run: harness_command plus the run's arguments. Its
    context (software entry, machine) is part of it, so changing either re-runs the run."""
    shape = (run.backend, run.nodes, run.tasks_per_node, run.threads_per_task)
    return (f"{HARNESS_COMMANDS[shape]} --spec {shlex.quote(run.spec_json())} "
            f"--context {CONTEXT_ARGS[run.backend]} --out {shlex.quote(str(out))}")


def run_resources(run_spec):
    """Snakemake resources of a run: its memory and walltime locally, its full sbatch
    request (nodes, tasks, CPUs per task, partition, ...) on SLURM."""
    if CAMPAIGN.machine["executor"] == "slurm":
        return slurm_resources(run_spec, CAMPAIGN.machine)
    return {"mem_mb": estimated_memory_mb(run_spec), "runtime": CAMPAIGN.machine["walltime_max_min"]}


def run_files():
    return [f"{RESULTS}/runs/{run_id}.h5" for run_id in sorted(RUNS)]


def validated_run_ids():
    """Runs compared with the reference ensemble: those that record spikes."""
    return sorted(run_id for run_id, run in RUNS.items() if run.record_spikes) if VALIDATED else []


def validation_files():
    return [f"{RESULTS}/validation/{run_id}.json" for run_id in validated_run_ids()]


def campaign_outputs():
    # The run files are targets themselves: one that is missing (set aside, deleted, never
    # written) is redone even when campaign.h5 is already there, and collect then follows.
    outputs = run_files() + [f"{RESULTS}/campaign.h5", f"{RESULTS}/runs.csv", f"{RESULTS}/analysis/bennch.csv"]
    if CAMPAIGN.experiment["scaling"] == "strong":
        outputs += [f"{RESULTS}/analysis/strong_scaling.csv", f"{RESULTS}/analysis/strong_scaling.png"]
    else:
        outputs += [f"{RESULTS}/analysis/weak_scaling.csv", f"{RESULTS}/analysis/weak_scaling.png"]
    outputs += [f"{RESULTS}/analysis/rtf_energy.csv", f"{RESULTS}/analysis/rtf_energy.png"]
    if VALIDATED:
        outputs += [f"{RESULTS}/analysis/validation.csv", f"{RESULTS}/analysis/validation.png"]
    return outputs


onerror:
    # Jobs failed. Attempts ended from outside get SLURM's final job state now that their
    # jobs are gone, and a run whose first node was lost gets the record its supervisor
    # could not write (spikescale/supervise.py, reconcile_attempts).
    if CAMPAIGN.machine["executor"] == "slurm":
        from spikescale.supervise import reconcile_attempts

        for _path in reconcile_attempts(Path(RESULTS), {run_id: run.spec() for run_id, run in RUNS.items()}):
            print(f"spikescale: attempt recorded with SLURM's final job state: {_path}")


onsuccess:
    print(f"spikescale: campaign {CAMPAIGN.name!r} ({len(RUNS)} runs) is complete in {RESULTS}/ "
          "(runs.csv, campaign.h5, analysis/)")


onstart:
    # The Snakemake settings only exist once the workflow executes: check them here, before
    # the first job is submitted (see spikescale/executor_check.py for what each prevents).
    from snakemake_interface_executor_plugins.settings import ExecMode
    from spikescale.executor_check import executor_problems

    if workflow.exec_mode == ExecMode.DEFAULT:
        _settings = workflow.executor_settings
        _problems = executor_problems(
            CAMPAIGN.machine, CAMPAIGN.files["machine"], workflow.executor_plugin.name,
            getattr(_settings, "array_jobs", None), getattr(_settings, "status_command", None),
            workflow.resource_settings.nodes,
            sum(job.rule.name.startswith("simulate_") for job in workflow.dag.needrun_jobs()),
        )
        if _problems:
            raise WorkflowError("spikescale: Snakemake's settings do not fit the campaign:\n  - "
                                + "\n  - ".join(_problems))
