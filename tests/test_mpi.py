"""MPI runs on this machine with the NEST that `make nest-mpi` builds: ranks x threads,
per-rank figures, and the clear failure of a multi-rank run on a NEST without MPI."""

import os
import subprocess

import pandas as pd
import pytest

from helpers import REPO, edit_yaml, harness_env, run_harness, run_spec, snakemake
from spikescale.models.pd14 import derived
from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.record import read_record

MPI_PYTHON = REPO / ".venvs" / "nest-mpi" / "bin" / "python"
ROOT_FLAG = ["--allow-run-as-root"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def mpi_python():
    """The MPI NEST's interpreter (a test that uses it is marked needs_mpi)."""
    return MPI_PYTHON


def mpirun(python, spec, out, ranks=2):
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *ROOT_FLAG,
           str(python), "-m", "spikescale.harness", "--spec",
           __import__("json").dumps(spec), "--out", str(out)]
    return subprocess.run(cmd, env=harness_env(), capture_output=True, text=True, timeout=300)


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_two_ranks_match_two_threads(mpi_python, nest_python, tmp_path):
    """NEST promises the same network and spikes for the same number of virtual
    processes, however they split into ranks and threads: 2 x 1 against 1 x 2."""
    ranks = run_spec(tasks_per_node=2, record_spikes=True)
    proc = mpirun(mpi_python, ranks, tmp_path / "ranks.h5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    threads = run_spec(threads_per_task=2, record_spikes=True)
    assert run_harness(threads, tmp_path / "threads.h5").returncode == 0
    by_ranks, by_threads = read_record(tmp_path / "ranks.h5"), read_record(tmp_path / "threads.h5")
    s = by_ranks["summary"]["attrs"]
    assert by_ranks["attrs"]["status"] == "ok" and s["n_ranks"] == 2 and set(by_ranks["ranks"]) == {"0", "1"}
    assert s["n_synapses"] == derived.derive(0.02, 0.02, "poisson").n_synapses  # summed over ranks
    assert s["n_spikes"] == by_threads["summary"]["attrs"]["n_spikes"] > 0
    per_rank = [by_ranks["ranks"][r]["counts"]["attrs"]["n_spikes"] for r in ("0", "1")]
    assert s["n_spikes_rank_min"] == min(per_rank) and s["n_spikes_rank_max"] == max(per_rank)
    assert s["t_sim_s_rank_min"] <= s["t_sim_s_rank_mean"] <= s["t_sim_s_rank_max"] == s["t_sim_s"]
    assert s["imbalance_sim"] >= 1.0
    assert by_ranks["allocation"]["attrs"]["mpi_world_size"] == 2
    assert by_ranks["provenance"]["packages"]["attrs"]["nest_have_mpi"] is True


@pytest.mark.needs_mpi  # mpirun (make nest-mpi installs it)
@pytest.mark.needs_nest
def test_several_ranks_on_nest_without_mpi_fail_clearly(nest_python, tmp_path):
    proc = mpirun(nest_python, run_spec(tasks_per_node=2), tmp_path / "r.h5")
    rec = read_record(tmp_path / "r.h5")  # recorded, although NEST itself would exit at import
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup"
    assert "no MPI support" in rec["attrs"]["error"] and "make nest-mpi" in rec["attrs"]["error"], proc.stdout


def test_multi_rank_campaign_needs_an_mpi_build(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="local-mpi",
              axes={"nodes": [1], "tasks_per_node": [1, 2], "threads_per_task": [1]})
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    (problem,) = info.value.problems
    assert problem.key == "nest.environment.kind" and "'nest-mpi'" in problem.allowed
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software="nest-mpi")
    assert load_campaign("tiny", config_dir).entry("nest", "nest-mpi")["environment"] == {"kind": "venv", "name": "nest-mpi"}


@pytest.mark.needs_mpi
@pytest.mark.workflow
@pytest.mark.slow
def test_campaign_over_ranks_through_snakemake(mpi_python, config_dir, tmp_path):
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="local-mpi", software="nest-mpi",
              axes={"nodes": [1], "tasks_per_node": [1, 2], "threads_per_task": [1]})
    results = tmp_path / "results"
    snakemake(config_dir, results)
    runs = pd.read_csv(results / "tiny" / "runs.csv").set_index("tasks_per_node")
    assert (runs["status"] == "ok").all() and list(runs["n_ranks"]) == [1, 2]
    assert (runs["n_synapses"] == derived.derive(0.02, 0.02, "poisson").n_synapses).all()
    assert runs.loc[2, "t_sim_s_rank_max"] == runs.loc[2, "t_sim_s"]
    table = pd.read_csv(results / "tiny" / "analysis" / "strong_scaling.csv")
    assert list(table["virtual_processes"]) == [1, 2]
