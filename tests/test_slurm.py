"""Runs on a real SLURM cluster (Debian's slurm-wlm; two nodes on this machine, started by
tests/slurm_cluster.py and stopped afterwards).

Plain sbatch jobs: each run records the allocation it actually got, a mismatch with its
request fails the run, array tasks and two-node MPI runs (mpirun) included.
Whole campaigns through `snakemake --profile profiles/slurm-test` (the Snakemake SLURM
executor): one job array per resource shape, each task's allocation equal to its request,
two-node runs with one rank per node (srun --mpi=pmix, MPI NEST) and min/mean/max over
ranks, collected and plotted as with the local executor; settings that would hang the
workflow are refused before anything is submitted; a cancelled job, a job over its time
limit and a lost node each leave a record of how the run ended, and the next snakemake
completes exactly what is missing.
"""

import json
import shlex
import subprocess
import time

import pandas as pd
import pytest

from helpers import REPO, SNAKEMAKE, checksums, edit_yaml, record_fault, run_spec, snakemake
from slurm_cluster import SlurmTestCluster
from spikescale.record import read_record
from spikescale.resources import launch_command

MPI_PYTHON = REPO / ".venvs" / "nest-mpi" / "bin" / "python"
NEST_PYTHON = REPO / ".venvs" / "nest" / "bin" / "python"

# The cluster's daemons run as root. Jobs run NEST (needs_nest) or, in the campaigns, MPI NEST (needs_mpi).
pytestmark = [pytest.mark.needs_root, pytest.mark.slurm]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmTestCluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c
    assert not c.leftover_processes()


def submit(cluster, workdir, script: str, *sbatch_args) -> str:
    path = workdir / "job.sh"
    path.write_text("#!/bin/bash\nset -euo pipefail\n" + script)
    out = subprocess.run(["sbatch", "--parsable", "-D", str(workdir), "-o", str(workdir / "slurm-%A_%a.out"),
                          *sbatch_args, str(path)], env=cluster.env, capture_output=True, text=True, check=True)
    return out.stdout.strip().split(";")[0]


def wait_done(cluster, job_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=cluster.env, capture_output=True,
                               text=True).stdout.split()
        if not queue:
            return
        time.sleep(1)
    raise AssertionError(f"job {job_id} still queued or running after {timeout} s:\n{cluster.logs()}")


def harness_line(python, spec, out, launcher=""):
    return (f"{launcher} {python} -m spikescale.harness --spec '{json.dumps(spec)}'"
            f" --out {out}\n")


def run_one(cluster, tmp_path, spec, *sbatch_args, python=NEST_PYTHON, launcher=""):
    """Submit one run as a batch job, wait for it, return (job id, record)."""
    job = submit(cluster, tmp_path, harness_line(python, spec, tmp_path / "run.h5", launcher), *sbatch_args)
    wait_done(cluster, job)
    return job, read_record(tmp_path / "run.h5")


@pytest.mark.needs_nest
def test_single_node_run_records_its_allocation(cluster, tmp_path):
    job, rec = run_one(cluster, tmp_path, run_spec(threads_per_task=2), "--nodes=1", "--ntasks=1",
                       "--cpus-per-task=2")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    alloc = rec["allocation"]["attrs"]
    assert alloc["slurm_job_id"] == job
    assert (alloc["slurm_job_num_nodes"], alloc["slurm_job_cpus_per_task"]) == (1, 2)
    assert alloc["slurm_job_source"] == "scontrol"
    assert rec["provenance"]["slurm"]["attrs"]["SLURM_JOB_ID"] == job


@pytest.mark.needs_nest
def test_allocation_that_differs_from_the_request_fails_the_run(cluster, tmp_path):
    _, rec = run_one(cluster, tmp_path, run_spec(threads_per_task=2), "--nodes=1", "--ntasks=1",
                     "--cpus-per-task=1")
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup"
    assert "asked for 2 thread(s) per task, SLURM gave 1 CPU(s) per task" in rec["attrs"]["error"]


@pytest.mark.needs_nest
def test_array_tasks_record_their_own_task(cluster, tmp_path):
    specs = [run_spec(seed=seed) for seed in (1, 2)]
    lines = "".join(f"[ \"$SLURM_ARRAY_TASK_ID\" = {i} ] && " + harness_line(NEST_PYTHON, s, tmp_path / f"{i}.h5")
                    for i, s in enumerate(specs))
    job = submit(cluster, tmp_path, lines + "true\n", "--array=0-1", "--nodes=1", "--ntasks=1",
                 "--cpus-per-task=1")
    wait_done(cluster, job)
    for i in range(2):
        alloc = read_record(tmp_path / f"{i}.h5")["allocation"]["attrs"]
        assert alloc["slurm_array_job_id"] == job and alloc["slurm_array_task_id"] == str(i)
        assert alloc["slurm_job_cpus_per_task"] == 1


@pytest.mark.needs_mpi
def test_two_node_mpi_run_has_one_rank_per_node(cluster, tmp_path):
    spec = run_spec(nodes=2, tasks_per_node=1, threads_per_task=1)
    launcher = launch_command(spec, {"mpi": {"launcher": "mpirun"}})
    _, rec = run_one(cluster, tmp_path, spec, "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1",
                     python=MPI_PYTHON, launcher=launcher)
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    alloc = rec["allocation"]
    assert json.loads(alloc["attrs"]["nodes_used"]) == ["n1", "n2"]
    assert sorted(v.decode() if isinstance(v, bytes) else v for v in alloc["rank_node"]) == ["n1", "n2"]
    assert rec["summary"]["attrs"]["n_ranks"] == 2



# -- whole campaigns through the Snakemake SLURM executor -----------------------------------

PROFILE = REPO / "profiles" / "slurm-test"


def slurm_campaign(config_dir, **model_changes):
    """The slurm_test campaign (nodes 1 and 2 x threads 1 and 2, MPI NEST) on the tiny model."""
    edit_yaml(config_dir / "experiment" / "slurm_test.yaml", model="tiny")
    edit_yaml(config_dir / "model" / "tiny.yaml", **model_changes)


def executor_run(cluster, config_dir, results, *args, **kwargs):
    return snakemake(config_dir, results, "--profile", str(PROFILE), *args, experiment="slurm_test",
                     env=cluster.env, **kwargs)


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_campaign_through_the_executor_one_array_per_shape(cluster, config_dir, tmp_path):
    slurm_campaign(config_dir, seeds=[1], t_presim_ms=50.0, t_sim_ms=100.0)
    results = tmp_path / "results"
    executor_run(cluster, config_dir, results)
    campaign = results / "slurm_test"
    runs = pd.read_csv(campaign / "runs.csv", dtype={"slurm_array_job_id": str, "slurm_array_task_id": str})
    assert len(runs) == 8 and (runs["status"] == "ok").all(), runs[["run_id", "error"]]
    assert set(zip(runs["nodes"], runs["threads_per_task"])) == {(1, 1), (1, 2), (2, 1), (2, 2)}

    for row in runs.itertuples():
        rec = read_record(campaign / "runs" / f"{row.run_id}.h5")
        alloc = rec["allocation"]["attrs"]
        # what SLURM granted the job (slurmctld's view) and the run's own step, against the request
        assert alloc["slurm_job_source"] == "scontrol"
        assert (alloc["slurm_job_num_nodes"], alloc["slurm_job_ntasks"], alloc["slurm_job_cpus_per_task"]) == (
            row.nodes, row.nodes * row.tasks_per_node, row.threads_per_task)
        assert alloc["slurm_step_cpus_per_task"] == row.threads_per_task
        nodes_used = set(alloc_nodes(rec))
        assert len(nodes_used) == row.nodes and nodes_used <= {"n1", "n2"}
        assert len(rec["ranks"]) == row.nodes and row.n_ranks == row.nodes
        assert row.t_sim_s_rank_min <= row.t_sim_s_rank_mean <= row.t_sim_s_rank_max == row.t_sim_s

    # One job array per resource shape: the executor gives every task the first job's
    # resources, so an array must never mix shapes (each shape is its own rule).
    arrays = runs.groupby(["nodes", "threads_per_task"])["slurm_array_job_id"]
    assert arrays.nunique().eq(1).all() and runs["slurm_array_job_id"].nunique() == 4
    assert runs.groupby("slurm_array_job_id")["slurm_array_task_id"].nunique().eq(2).all()

    table = pd.read_csv(campaign / "analysis" / "strong_scaling.csv")
    assert set(table["nodes"]) == {1, 2}
    assert (campaign / "analysis" / "strong_scaling.png").stat().st_size > 10_000
    again = executor_run(cluster, config_dir, results)
    assert "Nothing to be done" in again.stdout + again.stderr


def alloc_nodes(rec):
    return [text(n) for n in rec["allocation"]["rank_node"]]


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_settings_that_would_hang_are_refused_before_submitting(cluster, config_dir, tmp_path):
    slurm_campaign(config_dir, seeds=[1])
    results = tmp_path / "results"
    cases = {
        # jobs below the number of runs: the plugin drops ready jobs and waits forever (#473)
        ("--jobs", "2"): "--jobs is 2, below the 8 runs to do",
        # no accounting on this cluster: sacct polling would never see the jobs end
        ("--slurm-status-command", "sacct"): "slurm.accounting = false",
    }
    for args, message in cases.items():
        proc = executor_run(cluster, config_dir, results, *args, check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stderr[-3000:]
    # a SLURM machine without the SLURM executor (the runs would call srun outside a job)
    local = snakemake(config_dir, results, experiment="slurm_test", check=False)
    assert "uses the 'local' executor" in local.stdout + local.stderr
    queue = subprocess.run(["squeue", "-h", "-t", "all"], env=cluster.env, capture_output=True, text=True).stdout
    assert queue.strip() == "" or "slurm_test" not in queue  # nothing was submitted
    assert not (results / "slurm_test" / "runs").exists()


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_mpirun_launcher_through_the_executor(cluster, config_dir, tmp_path):
    """mpi.launcher mpirun: a two-node run as a job of its own (inside the executor's
    one-task step) and two as an array (in the batch step); one rank per node each time."""
    edit_yaml(config_dir / "machine" / "slurm-test.yaml", mpi={"launcher": "mpirun"})
    for repetitions in (1, 2):
        edit_yaml(config_dir / "experiment" / "slurm_test.yaml", repetitions=repetitions, axes={
            "nodes": [2], "tasks_per_node": [1], "threads_per_task": [1]})
        slurm_campaign(config_dir, seeds=[1])
        executor_run(cluster, config_dir, tmp_path / "results")
        runs = pd.read_csv(tmp_path / "results" / "slurm_test" / "runs.csv")
        assert len(runs) == repetitions and (runs["status"] == "ok").all(), runs["error"]
        assert (runs["nodes_used"] == '["n1", "n2"]').all() and (runs["n_ranks"] == 2).all()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_cancelled_lost_and_timed_out_runs_are_recorded_then_completed(cluster, config_dir, tmp_path):
    """scancel one run, lose the node of another, let both run into their time limit;
    each attempt is recorded with its reason, and a last snakemake completes both."""
    # one run on one node, one on two nodes (one rank each); about 100 s of simulation
    edit_yaml(config_dir / "experiment" / "slurm_test.yaml", axes={
        "nodes": [1, 2], "tasks_per_node": [1], "threads_per_task": [1]}, repetitions=1)
    slurm_campaign(config_dir, seeds=[1], t_presim_ms=50.0, t_sim_ms=100_000.0)
    results, campaign = tmp_path / "results", tmp_path / "results" / "slurm_test"
    logs, failed = campaign / "logs" / "simulate", campaign / "failed"
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
           "--profile", str(PROFILE), "--config", "experiment=slurm_test", f"config_dir={config_dir}",
           f"results_dir={results}"]

    def log_of(nodes):
        return next(logs.glob(f"nest-n{nodes}x1x1-*.log"), None)

    def simulating(nodes):
        log = log_of(nodes)
        return log is not None and "phase simulate started" in log.read_text()

    def attempts(nodes):
        return [read_record(p)["attrs"] for p in sorted(failed.glob(f"nest-n{nodes}x1x1-*.h5"))]

    # 1. scancel the one-node run; stop node n2 under the two-node run
    workflow = subprocess.Popen(cmd, env=cluster.env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: simulating(1) and simulating(2), 180, "both runs to simulate")
        job = next(line.split("SLURM job ")[1].split()[0] for line in log_of(1).read_text().splitlines()
                   if "spikescale.supervise: SLURM job " in line)
        subprocess.run(["scancel", job], env=cluster.env, check=True)
        wait_for(lambda: attempts(1), 60, "the cancelled run's record")
        cluster.stop_node("n2")
        out = workflow.communicate(timeout=240)[0]  # never hangs on jobs that are gone
    finally:
        if workflow.poll() is None:
            workflow.kill()
    cluster.start_node("n2")
    cluster.wait_settled()  # the killed steps cleaned up before the next jobs start there
    assert workflow.returncode != 0
    (cancelled,) = attempts(1)
    assert cancelled["status"] == "failed" and cancelled["error"].startswith(f"cancelled: SLURM job {job} "), out
    assert "terminated by signal SIGTERM" in cancelled["error"]  # the run's own record, kept inside
    (lost,) = attempts(2)
    assert lost["status"] == "failed" and lost["error"].startswith("node failure: SLURM job "), lost["error"]
    assert not list((campaign / "runs").glob("*.h5"))  # both are missing: they will run again

    # 2. both again, over a 1-minute limit: SLURM ends them after 60-90 s
    # The walltime estimate would refuse a limit these runs cannot meet (spikescale.estimate);
    # here SLURM must end them, so the machine file says its cores are fast enough for it.
    edit_yaml(config_dir / "machine" / "slurm-test.yaml", walltime_max_min=1, core_speed_relative=100)
    executor_run(cluster, config_dir, results, check=False, timeout=400)
    for nodes in (1, 2):
        timed_out = attempts(nodes)[-1]
        assert timed_out["status"] == "timed_out" and timed_out["error"].startswith("time limit: SLURM job ")
    assert len(attempts(1)) == len(attempts(2)) == 2  # nothing of the first attempts is lost

    # 3. with time enough, a last snakemake completes exactly these two runs
    cluster.wait_settled()
    edit_yaml(config_dir / "machine" / "slurm-test.yaml", walltime_max_min=10)
    done = executor_run(cluster, config_dir, results, timeout=600)
    assert (done.stdout + done.stderr).count("(Rule: simulate_") == 2
    runs = pd.read_csv(campaign / "runs.csv")
    after = checksums(campaign / "runs")
    for fault in ("SLURM job cancelled (scancel) while its run simulated",
                  "SLURM node lost (slurmd stopped) under a two-node run",
                  "SLURM time limit reached by a one-node run", "SLURM time limit reached by a two-node run"):
        record_fault(fault, expected_runs=2, runs=runs, before={}, after=after)
    assert (runs["status"] == "ok").all() and len(runs) == 2


# -- a cluster with accounting (slurmdbd on MariaDB) ----------------------------------------

@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_with_accounting_sacct_polls_and_accounts_each_runs_step(config_dir, tmp_path):
    """slurmdbd with MariaDB, as on production clusters: the executor polls job states with
    sacct, and collect asks sacct for the energy of each run's step. This cluster has no
    energy plugin (no sensor to read), which sacct reports as 0: recorded as unavailable."""
    edit_yaml(config_dir / "experiment" / "slurm_test.yaml", repetitions=1, axes={
        "nodes": [1, 2], "tasks_per_node": [1], "threads_per_task": [1]})
    machine = config_dir / "machine" / "slurm-test.yaml"
    edit_yaml(machine, slurm={"partition": "debug", "accounting": True})
    slurm_campaign(config_dir, seeds=[1])
    with SlurmTestCluster(tmp_path / "slurm", accounting=True) as cluster:
        results = tmp_path / "results"
        executor_run(cluster, config_dir, results, "--slurm-status-command", "sacct")
        runs = pd.read_csv(results / "slurm_test" / "runs.csv", dtype={"slurm_step_id": str})
        assert (runs["status"] == "ok").all() and len(runs) == 2
        for row in runs.itertuples():
            step = f"{row.slurm_job_id}.{row.slurm_step_id}"
            assert row.energy_job_source.startswith(f"unavailable: SLURM accounting reports no energy for {step} ")
            sacct = subprocess.run(["sacct", "-n", "-P", "-j", str(row.slurm_job_id), "-o", "JobIDRaw,State"],
                                   env=cluster.env, capture_output=True, text=True).stdout
            assert f"{step}|COMPLETED" in sacct  # the run's own step, accounted
    assert not cluster.leftover_processes()


# -- GPUs: a gres declared on stand-in device files ------------------------------------------
# The test cluster has no GPU. Its nodes declare one stand-in GPU each (gres.conf: an empty
# file under the cluster's folder), which SLURM counts, grants and hands to job steps
# (CUDA_VISIBLE_DEVICES, SLURM_GPUS_ON_NODE) as it would a real one. What this cannot test:
# CUDA, a simulator on a GPU, device binding and confinement (cgroups), NVML energy.

GPU_MACHINE = {"name": "slurm-test-gpu", "executor": "slurm", "nodes_max": 2, "cores_per_node": 2,
               "memory_per_node_mb": 2048, "exclusive": False, "walltime_max_min": 10, "gpus_per_node": 1,
               "slurm": {"partition": "debug"}, "mpi": {"launcher": "srun", "srun_mpi": "pmix"}}
# A GPU run's context as spikescale.jobs.run_context makes it (software gpu: true). The
# simulator is still NEST on CPUs: what is tested is the request, the grant and the check.
GPU_CONTEXT = {"software": {"environment": {"kind": "venv", "name": "nest-mpi"}, "gpu": True},
               "machine": {"name": "slurm-test-gpu", "executor": "slurm", "exclusive": False,
                           "gpus_per_node": 1}}


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory):
    with SlurmTestCluster(tmp_path_factory.mktemp("slurm-gpu"), gpus_per_node=1) as c:
        yield c
    assert not c.leftover_processes()


def gpu_run_command(spec, out, context=GPU_CONTEXT, python=MPI_PYTHON):
    """The run's command as the workflow builds it (launcher, harness, context)."""
    from spikescale.jobs import harness_argv

    words = harness_argv(python, spec, out, context)
    return f"{launch_command(spec, GPU_MACHINE)} {' '.join(shlex.quote(w) for w in words)}"


@pytest.mark.needs_mpi
def test_a_gpu_run_without_its_gpu_fails_at_start(gpu_cluster, tmp_path):
    """sbatch without --gres: the run asks for one GPU per node and the job has none."""
    spec = run_spec()
    job = submit(gpu_cluster, tmp_path, gpu_run_command(spec, tmp_path / "run.h5") + "\n", "--nodes=1",
                 "--ntasks-per-node=1", "--cpus-per-task=1")
    wait_done(gpu_cluster, job)
    rec = read_record(tmp_path / "run.h5")
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup"
    error = rec["attrs"]["error"]
    assert "asked for 1 GPU(s) per node, SLURM job has 0" in error
    assert "asked for 1 GPU(s) per node, rank on n1 can use 0" in error


GPU_SNAKEFILE = '''\
import json
from spikescale.resources import slurm_resources

RUNS = json.load(open("runs.json"))  # name -> {spec, command}
MACHINE = json.load(open("machine.json"))

rule all:
    input: [f"{name}.h5" for name in RUNS]

# One rule per shape, as in the workflow: the executor puts each rule's jobs into one array.
for _nodes in sorted({run["spec"]["nodes"] for run in RUNS.values()}):
    rule:
        name: f"gpu_n{_nodes}"
        output: "{name}.h5"
        wildcard_constraints: name=f"n{_nodes}-.*"
        params: command=lambda wildcards: RUNS[wildcards.name]["command"]
        resources: **slurm_resources(next(r["spec"] for r in RUNS.values() if r["spec"]["nodes"] == _nodes), MACHINE, 1)
        shell: "bash -c {params.command:q}"
'''


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_gpu_runs_through_the_executor_get_and_record_their_gpus(gpu_cluster, tmp_path):
    """Resources from spikescale.resources.slurm_resources, submitted by the Snakemake SLURM
    executor as a campaign's are: two one-node runs (one job array) and a two-node run (a
    job of its own, inside the executor's own job step), each asking for one GPU per node.
    Each gets it on every node, its allocation check passes, and runs.csv's gpus_per_node is 1."""
    from spikescale.record import read_summary
    from spikescale.store import row_from_summary

    runs = {}
    for nodes, seed in ((1, 1), (1, 2), (2, 1)):
        spec = run_spec(nodes=nodes, seed=seed)
        name = f"n{nodes}-seed{seed}"
        runs[name] = {"spec": spec, "command": gpu_run_command(spec, tmp_path / f"{name}.h5")}
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    (tmp_path / "machine.json").write_text(json.dumps(GPU_MACHINE))
    (tmp_path / "Snakefile").write_text(GPU_SNAKEFILE)
    proc = subprocess.run([str(SNAKEMAKE), "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
                           "--profile", str(PROFILE)], cwd=tmp_path, env=gpu_cluster.env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    arrays = {}
    for name, run in runs.items():
        rec = read_record(tmp_path / f"{name}.h5")
        assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
        alloc = rec["allocation"]["attrs"]
        assert alloc["requested_gpus_per_node"] == 1 and alloc["slurm_job_gpus_per_node"] == 1
        # the ranks stayed nodes x tasks per node (no --ntasks-per-gpu from the plugin)
        assert alloc["slurm_job_ntasks"] == run["spec"]["nodes"] and alloc["slurm_job_source"] == "scontrol"
        assert alloc["gpus_per_node"] == 1 and alloc["slurm_step_gpus_on_node"] == 1
        assert list(rec["allocation"]["rank_gpus_visible"]) == [1] * run["spec"]["nodes"]
        assert all(text(s).startswith("CUDA_VISIBLE_DEVICES=") for s in rec["allocation"]["rank_gpus_source"])
        assert len(set(alloc_nodes(rec))) == run["spec"]["nodes"]  # one GPU on each of its nodes
        assert row_from_summary(read_summary(tmp_path / f"{name}.h5"), tmp_path / f"{name}.h5")["gpus_per_node"] == 1
        arrays.setdefault(run["spec"]["nodes"], set()).add(alloc["slurm_array_job_id"])
    assert len(arrays[1]) == 1  # the two one-node runs: one job array
