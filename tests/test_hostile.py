"""Hostile and broken input: every case of tests/hostile_inputs.py is rejected with an error
that names the file and the key, before anything is planned or submitted; nothing executes;
values that reach sbatch are checked again where the request is built."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers import snakemake
from hostile_inputs import CANARY, CASES
from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.resources import slurm_resources


@pytest.fixture(autouse=True)
def no_canary():
    Path(CANARY).unlink(missing_ok=True)
    yield
    assert not Path(CANARY).exists(), "a hostile configuration executed a command"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_configuration_is_rejected_naming_file_and_key(case, config_dir):
    case.apply(config_dir)
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    problems = info.value.problems
    assert any(p.file.endswith(case.file) and case.key in p.key for p in problems), problems
    message = str(info.value)
    assert message.startswith("invalid configuration") and "nothing was run" in message
    assert len(message) < 4000  # a clear message, not a dump of the input


def _fake_sbatch(bin_dir: Path) -> None:
    """SLURM commands that submit leave the canary: if the workflow ever submits, the test
    sees it. The executor plugin's own read-only query (scontrol show config) just fails."""
    bin_dir.mkdir()
    for name in ("sbatch", "srun", "salloc", "squeue", "sacct", "scontrol"):
        path = bin_dir / name
        leave = f'echo {name} "$@" >> {CANARY}\n' if name in ("sbatch", "srun", "salloc") else ""
        path.write_text(f"#!/bin/sh\n{leave}exit 1\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_injection_into_the_sbatch_request_is_rejected_before_submission(config_dir, tmp_path):
    case = next(c for c in CASES if c.name == "command substitution in partition")
    case.apply(config_dir)
    _fake_sbatch(tmp_path / "bin")
    results = tmp_path / "results"
    results.mkdir()
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    proc = snakemake(config_dir, results, "--executor", "slurm", "--jobs", "10", check=False, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "slurm.partition" in out and "$(touch" in out
    assert not Path(CANARY).exists()  # no SLURM command ran at all
    assert list(results.iterdir()) == []  # nothing written


@pytest.mark.parametrize("key,value", [("partition", "gpu;id"), ("account", "$(id)"), ("qos", "a b"),
                                       ("extra_sbatch", ["--comment=`id`"])])
def test_sbatch_values_are_checked_again_where_the_request_is_built(key, value):
    run = {"nodes": 1, "tasks_per_node": 1, "threads_per_task": 1, "n_scaling": 0.02, "k_scaling": 0.02,
           "drive": "poisson", "thalamic_input": False}
    machine = {"executor": "slurm", "walltime_max_min": 10, "memory_per_node_mb": 1000, "exclusive": True,
               "slurm": {key: value}}
    with pytest.raises(ValueError, match="sbatch command line"):
        slurm_resources(run, machine)


def test_ordinary_sbatch_values_pass_and_are_quoted():
    run = {"nodes": 2, "tasks_per_node": 4, "threads_per_task": 8}
    machine = {"executor": "slurm", "walltime_max_min": 10, "memory_per_node_mb": 1000, "exclusive": True,
               "slurm": {"partition": "batch", "extra_sbatch": ["--hint=nomultithread", "--mail-type=END"]}}
    res = slurm_resources(run, machine)
    assert res["slurm_partition"] == "batch"
    assert res["slurm_extra"] == "--ntasks-per-node=4 --exclusive --hint=nomultithread --mail-type=END"


@pytest.mark.parametrize("experiment", ["../model/tiny", "tiny; id", "/etc/passwd", ".."])
def test_experiment_names_that_are_not_names_are_refused(experiment, config_dir):
    with pytest.raises(ConfigError) as info:
        load_campaign(experiment, config_dir)
    (problem,) = info.value.problems
    assert problem.key == "experiment" and problem.value == experiment
