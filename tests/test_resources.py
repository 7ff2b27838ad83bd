"""What a run asks of the machine (SLURM request, MPI launcher) and the check that it got
exactly that. The live-cluster tests come with the SLURM work; these pin the arithmetic."""

from pathlib import Path

import pytest
import yaml

from helpers import edit_yaml, write_yaml
from spikescale import allocation
from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.resources import SLURM_STEP_SCRIPT, cores_requested, launch_command, slurm_resources

RUN = {"n_scaling": 0.02, "k_scaling": 0.02, "drive": "poisson", "thalamic_input": False,
       "nodes": 2, "tasks_per_node": 1, "threads_per_task": 2}
SLURM_MACHINE = {"name": "c", "executor": "slurm", "cores_per_node": 8, "memory_per_node_mb": 64000,
                 "exclusive": True, "walltime_max_min": 30,
                 "slurm": {"partition": "batch", "account": "proj1", "extra_sbatch": ["--hint=nomultithread"]},
                 "mpi": {"launcher": "mpirun", "mpirun_args": ["--mca", "btl_tcp_if_include", "lo"]}}


def test_slurm_request_from_run_and_machine():
    res = slurm_resources(RUN, SLURM_MACHINE)
    assert res["nodes"] == 2 and res["tasks"] == 2 and res["cpus_per_task"] == 2
    # No `mpi` resource: with it the executor runs the first job in every array task.
    assert "mpi" not in res and "tasks_per_node" not in res
    assert res["mem_mb"] == 64000 and res["runtime"] == 30  # exclusive: the whole node
    assert res["slurm_partition"] == "batch" and res["slurm_account"] == "proj1"
    assert res["slurm_extra"] == "--ntasks-per-node=1 --exclusive --hint=nomultithread"
    single = slurm_resources({**RUN, "nodes": 1}, SLURM_MACHINE)
    assert single["tasks"] == 1 and single["nodes"] == 1 and single["cpus_per_task"] == 2
    shared = slurm_resources(RUN, {**SLURM_MACHINE, "exclusive": False})
    assert shared["mem_mb"] < 64000 and "--exclusive" not in shared["slurm_extra"]


def test_launchers_spell_out_the_rank_layout():
    local = {**SLURM_MACHINE, "executor": "local"}
    assert launch_command({**RUN, "nodes": 1}, local) == ""  # one rank without SLURM: no launcher
    words = launch_command(RUN, local).split()
    assert words[:3] == ["mpirun", "-n", "2"] and "ppr:1:node" in words
    assert words[-3:] == ["--mca", "btl_tcp_if_include", "lo"]
    # In a SLURM job every run, one rank too, is a job step of its own, started by slurm_step.sh.
    step = str(SLURM_STEP_SCRIPT)
    srun = launch_command(RUN, {**SLURM_MACHINE, "mpi": {"launcher": "srun", "srun_mpi": "pmix"}})
    assert srun == (f"{step} srun --overlap --kill-on-bad-exit=1 --mpi=pmix --nodes=2 --ntasks=2 "
                    "--ntasks-per-node=1 --cpus-per-task=2")
    one = launch_command({**RUN, "nodes": 1}, SLURM_MACHINE)  # mpirun machine: one rank still via srun
    assert one.split()[:2] == [step, "srun"] and "--ntasks=1" in one and "--mpi=pmix" in one
    assert launch_command(RUN, SLURM_MACHINE).split()[:2] == [step, "mpirun"]
    site_default = launch_command({**RUN, "nodes": 1}, {k: v for k, v in SLURM_MACHINE.items() if k != "mpi"})
    assert "--mpi" not in site_default  # no mpi entry: the site's MpiDefault


def test_local_exclusive_run_reserves_the_whole_machine():
    assert cores_requested(RUN, {"cores_per_node": 2, "exclusive": True}) == 2
    assert cores_requested({**RUN, "threads_per_task": 1}, {"cores_per_node": 8, "exclusive": False}) == 1


SPEC = {"nodes": 2, "tasks_per_node": 1, "threads_per_task": 2}


def placement(node, cpus=2):
    return {"node": node, "host": "h", "cpus_usable": cpus, "pid": 1}


def test_allocation_matches():
    slurm = {"job_num_nodes": 2, "job_ntasks": 2, "job_cpus_per_task": 2, "step_cpus_per_task": 2}
    assert allocation.problems(SPEC, 2, [placement("n1"), placement("n2")], slurm) == []


def test_allocation_mismatches_are_named():
    wrong = allocation.problems(SPEC, 1, [placement("n1")],
                                {"job_num_nodes": 1, "job_ntasks": 1, "job_cpus_per_task": 1})
    text = " | ".join(wrong)
    assert "asked for 2 MPI rank(s)" in text and "got 1" in text
    assert "asked for 2 node(s), ranks run on 1: n1" in text
    assert "SLURM job has 1" in text and "SLURM gave 1 CPU(s) per task" in text
    assert "asked for 2 task(s), SLURM job has 1" in text
    # the job is right, but the step the run is in is not
    assert allocation.problems(SPEC, 2, [placement("n1"), placement("n2")],
                               {"job_num_nodes": 2, "job_cpus_per_task": 2, "step_cpus_per_task": 1}) == [
        "asked for 2 thread(s) per task, the job step has 1 CPU(s) per task"]
    assert allocation.problems({**SPEC, "nodes": 1}, 1, [placement("n1", cpus=1)], {}) == [
        "rank on n1 may use 1 CPU(s) but runs 2 thread(s)"]
    assert allocation.problems({**SPEC, "nodes": 1}, 1, [placement("n1", cpus=1)], {}, True) == []


def test_slurm_variables_are_read(monkeypatch):
    for name, value in {"SLURM_JOB_ID": "42", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS": "2",
                        "SLURM_NNODES": "2", "SLURM_CPUS_PER_TASK": "2", "SLURM_ARRAY_TASK_ID": "3",
                        "SLURM_STEP_ID": "0"}.items():
        monkeypatch.setenv(name, value)
    # without slurmctld (no scontrol here): the job view falls back to the variables, and says so
    got = allocation.slurm_allocation(ask_slurmctld=False)
    assert got["job_id"] == "42" and got["array_task_id"] == "3" and got["step_id"] == "0"
    assert (got["job_num_nodes"], got["job_ntasks"], got["job_cpus_per_task"]) == (2, 2, 2)
    assert (got["step_num_nodes"], got["step_ntasks"], got["step_cpus_per_task"]) == (2, 2, 2)
    assert got["job_source"] == "environment"
    monkeypatch.delenv("SLURM_JOB_ID")
    assert allocation.slurm_allocation() == {}


def test_one_simulate_rule_per_resource_shape(config_dir):
    """Job arrays group by rule: runs of different shapes must never share one."""
    from spikescale.plan import plan_runs

    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1, 2, 3])
    runs = plan_runs(load_campaign("tiny", config_dir))
    prefixes = {r.run_id.rsplit("-seed", 1)[0] for r in runs}
    shapes = {(r.backend, r.nodes, r.tasks_per_node, r.threads_per_task) for r in runs}
    assert len(prefixes) == len(shapes) == 2  # the id prefix names backend and shape


def test_managed_sbatch_options_are_refused(config_dir):
    write_yaml(config_dir / "machine" / "cluster.yaml", {**SLURM_MACHINE, "nodes_max": 4, "slurm": {
        "extra_sbatch": ["--time=10", "--hint=nomultithread"]}})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="cluster")
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    (problem,) = info.value.problems
    assert problem.key == "slurm.extra_sbatch[0]" and "--time is set by the workflow" in problem.allowed


def test_shell_metacharacters_in_sbatch_options_are_refused(config_dir):
    write_yaml(config_dir / "machine" / "cluster.yaml", {**SLURM_MACHINE, "slurm": {
        "partition": "batch; rm -rf /", "extra_sbatch": ["--comment=$(whoami)"]}})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="cluster")
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    keys = {p.key for p in info.value.problems}
    assert {"slurm.partition", "slurm.extra_sbatch[0]"} <= keys


def test_jobs_find_the_workflow_python_first_and_the_repository():
    """Rules say plain `python`: without conda it must be the interpreter running Snakemake."""
    from spikescale.jobs import prepare_job_environment

    environ = {"PATH": "/usr/bin:/bin"}
    prepare_job_environment(Path("/repo"), "/venv/bin/python", environ)
    assert environ == {"PATH": "/venv/bin:/usr/bin:/bin", "SPIKESCALE_REPO": "/repo"}
    prepare_job_environment(Path("/repo"), "/venv/bin/python", environ)  # once is enough
    assert environ["PATH"] == "/venv/bin:/usr/bin:/bin"


# -- GPUs (docs/running.md#gpus) ---------------------------------------------------------------

def test_a_gpu_run_asks_for_the_machines_gpus_per_node_as_gres():
    gpu_machine = {**SLURM_MACHINE, "gpus_per_node": 4, "gpu_type": "a100"}
    res = slurm_resources(RUN, gpu_machine, gpus_per_node=4)
    # per node (--gres), not the plugin's `gpu` (--gpus: a count for the whole job)
    assert res["gres"] == "gpu:a100:4" and "gpu" not in res and "gpu_model" not in res
    # the plugin would otherwise send --ntasks-per-gpu=<tasks> for a GPU job
    assert res["tasks_per_gpu"] == 0 and res["tasks"] == 2 and "--ntasks-per-node=1" in res["slurm_extra"]
    assert "gres" not in res["slurm_extra"] and "gpu" not in res["slurm_extra"]
    untyped = {k: v for k, v in gpu_machine.items() if k != "gpu_type"}
    assert slurm_resources(RUN, untyped, gpus_per_node=4)["gres"] == "gpu:4"
    cpu = slurm_resources(RUN, gpu_machine)  # a run that asks for no GPUs, on the same machine
    assert "gres" not in cpu and "tasks_per_gpu" not in cpu
    with pytest.raises(ValueError, match="sbatch command line"):
        slurm_resources(RUN, {**gpu_machine, "gpu_type": "a100 --x"}, 4)


def test_gpu_runs_and_cpu_runs_of_one_campaign_ask_and_know_differently(config_dir):
    """The software entry says gpu: true: its runs (one rule each shape, so one job array
    never mixes) ask for GPUs and carry the machine's GPU settings in their context; the
    other backends' runs ask for none, and their context (and so their hash) stays as before."""
    from spikescale.jobs import run_context, run_resources, software_entry
    from spikescale.plan import plan_runs

    software = config_dir / "software" / "default.yaml"
    write_yaml(software, {**yaml.safe_load(software.read_text()),
                          "brian2genn": {"environment": {"kind": "venv"}, "gpu": True}})
    write_yaml(config_dir / "machine" / "cluster.yaml", {**SLURM_MACHINE, "gpus_per_node": 2})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="cluster", backends=["nest", "brian2genn"])
    campaign = load_campaign("tiny", config_dir)
    runs = plan_runs(campaign)
    for run in runs:
        entry = software_entry(campaign, run)
        res, machine = run_resources(run, campaign.machine, entry), run_context(campaign, run)["machine"]
        if run.backend == "brian2genn":
            assert res["gres"] == "gpu:2" and machine["gpus_per_node"] == 2
        else:
            assert "gres" not in res and "gpus_per_node" not in machine
    assert {r.backend for r in runs} == {"nest", "brian2genn"}


def test_gpus_asked_come_from_the_software_entry_and_the_machine():
    assert allocation.gpus_per_node_asked({"gpu": True}, {"gpus_per_node": 4}) == 4
    assert allocation.gpus_per_node_asked({"gpu": False}, {"gpus_per_node": 4}) == 0
    assert allocation.gpus_per_node_asked({}, {"gpus_per_node": 4}) == 0
    assert allocation.gpus_per_node_asked(None, {"gpus_per_node": 4}) == 0


def gpu_placement(node, gpus, source="CUDA_VISIBLE_DEVICES=0"):
    return {**placement(node), "gpus_visible": gpus, "gpus_source": source}


def test_allocation_check_covers_gpus():
    slurm = {"job_num_nodes": 2, "job_ntasks": 2, "job_cpus_per_task": 2, "step_cpus_per_task": 2,
             "job_gpus_per_node": 1}
    both = [gpu_placement("n1", 1), gpu_placement("n2", 1)]
    assert allocation.problems(SPEC, 2, both, slurm, gpus_asked=1) == []
    assert allocation.gpus_per_node(both) == 1
    # the job was granted none (an array task with the first job's request, a site default)
    assert allocation.problems(SPEC, 2, both, {**slurm, "job_gpus_per_node": 0}, gpus_asked=1) == [
        "asked for 1 GPU(s) per node, SLURM job has 0"]
    # granted, but one rank's step does not hold it
    short = [gpu_placement("n1", 1), gpu_placement("n2", 0, "no CUDA_VISIBLE_DEVICES, no nvidia-smi")]
    assert allocation.problems(SPEC, 2, short, slurm, gpus_asked=1) == [
        "asked for 1 GPU(s) per node, rank on n2 can use 0 (no CUDA_VISIBLE_DEVICES, no nvidia-smi)"]
    assert allocation.gpus_per_node(short) == 0
    # in SLURM exactly what was asked; outside SLURM at least that many (nothing confines the run)
    assert allocation.problems(SPEC, 2, [gpu_placement("n1", 2), gpu_placement("n2", 2)], slurm, gpus_asked=1)
    local = {**SPEC, "nodes": 1}
    assert allocation.problems(local, 1, [gpu_placement("n1", 2, "nvidia-smi -L")], {}, gpus_asked=1) == []
    # a CPU run is not checked for GPUs
    assert allocation.problems(SPEC, 2, short, {**slurm, "job_gpus_per_node": 0}) == []


def test_gpus_visible_read_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert allocation.gpus_visible() == (2, "CUDA_VISIBLE_DEVICES=0,1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a step without GPUs, or hidden on purpose
    assert allocation.gpus_visible()[0] == 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "NoDevFiles")
    assert allocation.gpus_visible()[0] == 0
    placed = allocation.rank_placement()
    assert (placed["gpus_visible"], placed["gpus_source"]) == (0, "CUDA_VISIBLE_DEVICES=NoDevFiles")
