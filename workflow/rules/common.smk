# Shared set-up: load and validate the campaign (nothing runs if it is invalid) and plan it.
# Everything here is the installed spikescale package (pyproject.toml; `make env`); the
# logic lives there, in importable and tested modules (spikescale.jobs for run commands).
import hashlib
import json
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.jobs import (RunCommands, prepare_job_environment, run_resources, shapes, simulate_rule_name,
                             software_entry, supervised_run_shell)
from spikescale.plan import RUN_ID_TAIL, plan_runs, reference_key, reference_runs, run_id_prefix
from spikescale.resources import cores_requested
from spikescale.settings import workflow_settings
from spikescale.software import conda_file, missing_environment

REPO = Path(workflow.basedir).resolve()
# Every rule's shell says plain `python`: the rule's declared environment (spikescale.jobs).
prepare_job_environment(REPO)

try:
    SETTINGS = workflow_settings(config, REPO)  # experiment, config_dir, results_dir, checked
    CAMPAIGN = load_campaign(SETTINGS.experiment, SETTINGS.config_dir)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
CONFIG_DIR = str(SETTINGS.config_dir)

RUNS = {run.run_id: run for run in plan_runs(CAMPAIGN)}
PLAN_DIGEST = hashlib.sha256(json.dumps([sorted(RUNS), CAMPAIGN.resolved()], sort_keys=True).encode()).hexdigest()
RESULTS = f"{SETTINGS.results_dir}/{CAMPAIGN.name}"
# Validation: the NEST reference ensemble lives outside the campaign, so that campaigns of
# the same model share it and it is simulated once ('_' cannot start a campaign name).
VALIDATED = "validation" in CAMPAIGN.experiment
REFERENCE_RUNS = {run.run_id: run for run in reference_runs(CAMPAIGN)}
REFERENCE = f"{SETTINGS.results_dir}/_reference/{reference_key(CAMPAIGN)}" if VALIDATED else None

for _backend in sorted(set(CAMPAIGN.experiment["backends"]) | ({"nest"} if VALIDATED else set())):
    for _variant in CAMPAIGN.variants_of(_backend):
        _missing = missing_environment(CAMPAIGN.entry(_backend, _variant), _backend, REPO)
        if _missing:
            raise WorkflowError(_missing if CAMPAIGN.single_software else f"software variant {_variant!r}: {_missing}")


wildcard_constraints:
    run_id=r"[A-Za-z0-9][A-Za-z0-9.-]*",


def run_of(wildcards):
    try:
        return RUNS[wildcards.run_id]
    except KeyError:
        raise WorkflowError(f"run {wildcards.run_id!r} is not in the plan of campaign {CAMPAIGN.name!r}")


# One representative run per (backend, variant, nodes, tasks per node, threads per task),
# each given a simulate rule of its own. The NEST reference runs of the validation have
# commands too: a campaign may validate a backend without running NEST itself.
RUN_SHAPES = shapes(RUNS.values())
COMMANDS = RunCommands(CAMPAIGN, [*REFERENCE_RUNS.values(), *RUNS.values()], REPO)


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
    if any(run.backend == "nest" for run in RUNS.values()):  # NEST's kernel timers split its t_sim
        outputs += [f"{RESULTS}/analysis/phase_breakdown.csv", f"{RESULTS}/analysis/phase_breakdown.png"]
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
    # the truth about the campaign, not about this invocation's jobs (spikescale.store)
    from spikescale.store import completion_line

    print(completion_line(CAMPAIGN.name, Path(RESULTS), sorted(RUNS)))


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
