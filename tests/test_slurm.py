"""Runs on a real SLURM cluster (Debian's slurm-wlm; two nodes on this machine, started by
tests/slurm_cluster.py and stopped afterwards): each run records the allocation it actually
got, a mismatch with its request fails the run, array tasks and two-node MPI runs included.
The Snakemake SLURM executor on top of this cluster is the next step (see docs/running.md)."""

import json
import subprocess
import time

import pytest

from helpers import PYTHONPATH, REPO, run_spec
from slurm_cluster import SlurmTestCluster
from spikescale.record import read_record
from spikescale.resources import launch_command
from spikescale.software import cache_root

MPI_PYTHON = cache_root() / "nest-3.10.0-mpi" / "bin" / "python"
NEST_PYTHON = REPO / ".venvs" / "nest" / "bin" / "python"


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
    return (f"{launcher} env PYTHONPATH={PYTHONPATH} {python} -m spikescale.harness --spec '{json.dumps(spec)}'"
            f" --out {out}\n")


def run_one(cluster, tmp_path, spec, *sbatch_args, python=NEST_PYTHON, launcher=""):
    """Submit one run as a batch job, wait for it, return (job id, record)."""
    job = submit(cluster, tmp_path, harness_line(python, spec, tmp_path / "run.h5", launcher), *sbatch_args)
    wait_done(cluster, job)
    return job, read_record(tmp_path / "run.h5")


def test_single_node_run_records_its_allocation(cluster, tmp_path):
    job, rec = run_one(cluster, tmp_path, run_spec(threads_per_task=2), "--nodes=1", "--ntasks=1",
                       "--cpus-per-task=2")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    alloc = rec["allocation"]["attrs"]
    assert alloc["slurm_job_id"] == job
    assert (alloc["slurm_job_num_nodes"], alloc["slurm_cpus_per_task"]) == (1, 2)
    assert rec["provenance"]["slurm"]["attrs"]["SLURM_JOB_ID"] == job


def test_allocation_that_differs_from_the_request_fails_the_run(cluster, tmp_path):
    _, rec = run_one(cluster, tmp_path, run_spec(threads_per_task=2), "--nodes=1", "--ntasks=1",
                     "--cpus-per-task=1")
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup"
    assert "asked for 2 thread(s) per task, SLURM gave 1 CPU(s) per task" in rec["attrs"]["error"]


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
        assert alloc["slurm_cpus_per_task"] == 1


def test_two_node_mpi_run_has_one_rank_per_node(cluster, tmp_path):
    if not MPI_PYTHON.exists():
        pytest.fail(f"{MPI_PYTHON} is missing: `make test` builds it (make nest-mpi)")
    spec = run_spec(nodes=2, tasks_per_node=1, threads_per_task=1)
    launcher = launch_command(spec, {"mpi": {"launcher": "mpirun"}})
    _, rec = run_one(cluster, tmp_path, spec, "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1",
                     python=MPI_PYTHON, launcher=launcher)
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    alloc = rec["allocation"]
    assert json.loads(alloc["attrs"]["nodes_used"]) == ["n1", "n2"]
    assert sorted(v.decode() if isinstance(v, bytes) else v for v in alloc["rank_node"]) == ["n1", "n2"]
    assert rec["summary"]["attrs"]["n_ranks"] == 2

