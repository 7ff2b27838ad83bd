"""The supervisor that every simulate job runs (spikescale.supervise): a run that ends by
itself keeps its record as the job's output; an attempt ended from outside (SIGTERM here;
scancel, time limit and lost nodes on the real cluster in test_slurm.py) is set aside in
failed/ with the reason, and the run file stays missing so that the next snakemake redoes it."""

import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from helpers import harness_command, harness_env, run_spec
from spikescale.record import read_record


def supervise(spec, out, command, log):
    argv = [sys.executable, "-m", "spikescale.supervise", "--spec", json.dumps(spec), "--out", str(out),
            "--failed-dir", str(out.parent.parent / "failed"), "--log", str(log), "--", *command]
    return subprocess.Popen(argv, env=harness_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def attempts(tmp_path):
    return sorted((tmp_path / "failed").glob("*.h5"))


@pytest.mark.needs_nest
def test_a_run_that_ends_by_itself_keeps_its_record(nest_python, tmp_path):
    spec, out, log = run_spec(), tmp_path / "runs" / "r.h5", tmp_path / "r.log"
    proc = supervise(spec, out, harness_command(spec, out), log)
    console = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, console
    assert read_record(out)["attrs"]["status"] == "ok" and attempts(tmp_path) == []
    assert "record written" in console and "record written" in log.read_text()  # console and log


@pytest.mark.needs_nest
def test_sigterm_sets_the_attempt_aside_with_the_runs_own_record(nest_python, tmp_path):
    spec, out, log = run_spec(t_sim_ms=5000.0), tmp_path / "runs" / "r.h5", tmp_path / "r.log"
    proc = supervise(spec, out, harness_command(spec, out), log)
    for line in proc.stdout:
        if "phase simulate started" in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, rest
    assert not out.exists()  # missing: the next snakemake runs it again
    (attempt,) = attempts(tmp_path)
    assert attempt.name.startswith(spec["run_id"] + ".")
    rec = read_record(attempt)
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "simulate"
    assert rec["attrs"]["error"].startswith("terminated by signal SIGTERM (the run's own record:")
    assert "setup" in rec["ranks"]["0"]["phases"]  # what the run measured before it was stopped
    assert "RUN ENDED FROM OUTSIDE" in log.read_text()


def test_a_command_that_dies_without_a_record_gets_a_short_one(tmp_path):
    spec, out, log = run_spec(), tmp_path / "runs" / "r.h5", tmp_path / "r.log"
    proc = supervise(spec, out, ["bash", "-c", "echo starting; exit 3"], log)
    proc.communicate(timeout=60)
    assert proc.returncode == 1 and not out.exists()
    (attempt,) = attempts(tmp_path)
    rec = read_record(attempt)
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["recorded_by"] == "spikescale.supervise"
    assert rec["attrs"]["error"] == ("the run's command exited with code 3 (the run wrote no record of its own)")
    assert rec["spec"]["attrs"]["run_id"] == spec["run_id"]
    assert "starting" in log.read_text()


def test_a_shell_command_is_stopped_as_a_whole(tmp_path):
    """`module load x && srun ...`: the SIGTERM must reach the launcher behind the shell."""
    spec, out, log = run_spec(), tmp_path / "runs" / "r.h5", tmp_path / "r.log"
    marker = tmp_path / "stopped"
    inner = f'trap "touch {marker}; exit 1" TERM; echo ready; sleep 60 & wait'
    script = f"true && bash -c {shlex.quote(inner)}"
    proc = supervise(spec, out, ["bash", "-c", script], log)
    for line in proc.stdout:
        if "ready" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert marker.exists() and proc.returncode == 1


def test_slurm_notices_name_the_reason():
    from spikescale.supervise import ending_from_notices

    def ending(line):
        found = ending_from_notices(["srun: Job step aborted", line])
        return found and (found["status"], found["slurm_job_state"], found["slurm_job_id"], found["reason"])

    assert ending("slurmstepd-n1: error: *** STEP 12.1 ON n1 CANCELLED AT 2026-11-25T20:16:36 ***") == (
        "failed", "CANCELLED", "12", "cancelled: SLURM job 12 was cancelled (scancel or an administrator)")
    timeout = ending("slurmstepd: error: *** JOB 7 ON n2 CANCELLED AT 2026-11-25T20:16:36 DUE TO TIME LIMIT ***")
    assert timeout[:3] == ("timed_out", "TIMEOUT", "7")
    assert ending("*** STEP 3.0 ON n1 CANCELLED AT 2026-11-25T20:16:36 DUE TO NODE FAILURE ***")[1] == "NODE_FAIL"
    assert ending("an ordinary line *** with stars ***") == {}


def test_a_launch_failure_is_an_attempt_and_the_run_is_started_again(tmp_path, monkeypatch):
    """srun that could not start the tasks at all (as seen on the test cluster after a node's
    step was killed) is recorded as an attempt, with the launcher's words, and tried again;
    the second try's record is the run's."""
    from spikescale import supervise as sv

    monkeypatch.setattr(sv, "LAUNCH_RETRY_WAIT_S", (0.01,))
    spec, out, log = run_spec(), tmp_path / "runs" / "r.h5", tmp_path / "r.log"
    out.parent.mkdir()
    tries = tmp_path / "tries"
    command = ["bash", "-c", f"echo x >> {tries}; if [ $(wc -l < {tries}) -lt 2 ]; then "
               "echo 'srun: error: Task launch for StepId=21.0 failed on node n1: Zero Bytes were transmitted or "
               f"received' >&2; exit 1; fi; touch {out}"]
    assert sv.supervise(command, spec, out, tmp_path / "failed", log, launch_retries=2) == 0
    assert out.exists() and tries.read_text().count("x") == 2
    (attempt,) = attempts(tmp_path)
    rec = read_record(attempt)
    assert rec["attrs"]["error"].startswith("launch failure: the run's tasks never started (srun: error: Task launch")
    assert json.loads(rec["attrs"]["ended_by"])["launch_failure"] is True
    assert "LAUNCH FAILED" in log.read_text() and "try 2 of 3" in log.read_text()


def test_launch_failures_are_retried_a_bounded_number_of_times_and_never_a_run_that_started(tmp_path, monkeypatch):
    from spikescale import supervise as sv

    monkeypatch.setattr(sv, "LAUNCH_RETRY_WAIT_S", (0.01,))
    spec, out = run_spec(), tmp_path / "runs" / "r.h5"
    out.parent.mkdir()
    never = ["bash", "-c", "echo 'srun: error: Unable to create step for job 7: Job/step already completing' >&2; "
             "exit 1"]
    assert sv.supervise(never, spec, out, tmp_path / "failed", None, launch_retries=2) == 1
    assert len(attempts(tmp_path)) == 3  # the first try and two more, each recorded
    # a run that started (the harness's first line) and then failed is its own failure: one try
    started = ["bash", "-c", f"echo '[12:00:00] run {spec['run_id']}: backend nest, ...'; "
               "echo 'srun: error: Task launch for StepId=3.0 failed on node n2: x' >&2; exit 1"]
    assert sv.supervise(started, spec, out, tmp_path / "failed2", None, launch_retries=2) == 1
    (attempt,) = sorted((tmp_path / "failed2").glob("*.h5"))
    assert read_record(attempt)["attrs"]["error"].startswith("the run's command exited with code 1")
