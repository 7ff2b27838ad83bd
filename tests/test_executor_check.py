"""Snakemake settings that do not fit the machine are refused before anything is submitted
(spikescale.executor_check). The same checks through the real snakemake and SLURM are in
test_slurm.py; these pin each message."""

from spikescale.executor_check import executor_problems

SLURM = {"name": "c", "executor": "slurm", "slurm": {"accounting": False}}
LOCAL = {"name": "pc", "executor": "local"}


def check(machine, executor="slurm", array_jobs="all", status="squeue", jobs=100, runs=10):
    return executor_problems(machine, "config/machine/x.yaml", executor, array_jobs, status, jobs, runs)


def test_fitting_settings_pass():
    assert check(SLURM) == []
    assert check(LOCAL, executor="local", array_jobs=None, status=None, jobs=None) == []
    assert check({**SLURM, "slurm": {"accounting": True}}, status="sacct") == []


def test_machine_and_executor_must_agree():
    (problem,) = check(SLURM, executor="local")
    assert problem.startswith("config/machine/x.yaml: executor = 'slurm'") and "--profile profiles/slurm" in problem
    (problem,) = check(LOCAL)
    assert "is not a SLURM machine" in problem


def test_sacct_polling_without_accounting_is_refused():
    (problem,) = check(SLURM, status="sacct")
    assert "slurm.accounting = false" in problem and "slurm-status-command: squeue" in problem
    (problem,) = check(SLURM, status=None)
    assert "its default (sacct)" in problem


def test_arrays_need_a_job_slot_per_run():
    (problem,) = check(SLURM, jobs=8, runs=16)
    assert "--jobs is 8, below the 16 runs to do" in problem and "#473" in problem
    assert check(SLURM, jobs=8, runs=16, array_jobs=None) == []  # without arrays nothing is dropped
