"""Start one run and make sure that every attempt leaves a record:
``python -m spikescale.supervise --spec JSON --out RUN_FILE --failed-dir DIR --log LOG -- CMD...``

The harness records every way a run can end that it can see itself. It cannot record what
kills it from outside: a job cancelled with scancel, a job over its time limit, a lost node
(its ranks elsewhere then hang in MPI until SLURM kills them). This light process, started
by the simulate rule on the job's first node, runs the run's command, passes its output to
the console and the run's log, and when the run was ended from outside:
- finds out why: the signal, and SLURM's notice in the step's output ("*** STEP 12.0 ON n1
  CANCELLED AT ... DUE TO TIME LIMIT ***"); while the job ends, slurmctld only says
  COMPLETING, so the final state (CANCELLED, TIMEOUT, NODE_FAIL, ...) is added on the
  login node once the job is gone (`reconcile_attempts`, run by the workflow's onerror);
- moves the run's own record, if it wrote one, to DIR/<run_id>.<time>.h5 with that reason,
  or writes a short record there saying what is known (spec, reason, SLURM job);
- exits non-zero, so that the run file is missing and the next `snakemake` runs it again.
A run that ends by itself keeps its record in RUN_FILE (status ok or failed), as before.
The same folder holds the attempts that `make retry-failed` sets aside (spikescale.retry).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path


from spikescale import provenance
from spikescale.record import RecordError, iso, read_summary, update_attrs, write_record
from spikescale.retry import attempt_path

# SLURM job states that end a run from outside, and the status they give it.
SLURM_END_STATES = {
    "CANCELLED": ("failed", "cancelled: SLURM job {job} was cancelled (scancel or an administrator)"),
    "TIMEOUT": ("timed_out", "time limit: SLURM job {job} ran into its time limit"),
    "NODE_FAIL": ("failed", "node failure: SLURM job {job} lost one of its nodes (state NODE_FAIL)"),
    "PREEMPTED": ("failed", "preempted: SLURM job {job} was preempted"),
    "OUT_OF_MEMORY": ("failed", "out of memory: SLURM job {job} went over its memory limit"),
    "BOOT_FAIL": ("failed", "boot failure: SLURM job {job} could not start its nodes"),
    "DEADLINE": ("failed", "deadline: SLURM job {job} passed its deadline"),
}


# slurmstepd's notice when it ends a job or step, as srun prints it.
SLURM_NOTICE = re.compile(r"\*\*\* (?:JOB|STEP) (\S+) ON (\S+) CANCELLED AT (\S+)(?: DUE TO ([A-Z ]+?))? \*\*\*")
NOTICE_STATES = {None: "CANCELLED", "TIME LIMIT": "TIMEOUT", "NODE FAILURE": "NODE_FAIL", "PREEMPTION": "PREEMPTED"}


def ending_from_slurm(state: str, job: str, nodes: str = "") -> dict:
    """status, reason and SLURM fields for a run whose job ended in `state`."""
    status, reason = SLURM_END_STATES[state]
    return {"status": status, "reason": reason.format(job=job), "slurm_job_state": state, "slurm_job_id": job,
            "slurm_job_nodes": nodes}


def ending_from_notices(lines: list[str]) -> dict:
    """What SLURM's notices in the run's output say (empty if there were none)."""
    for line in reversed(lines):
        match = SLURM_NOTICE.search(line)
        if match and NOTICE_STATES.get(match.group(4)) in SLURM_END_STATES:
            job = match.group(1).split(".")[0]
            return ending_from_slurm(NOTICE_STATES[match.group(4)], job)
    return {}


def set_attempt_aside(out: Path, failed_dir: Path, spec: dict, ending: dict, started_at: float) -> Path:
    """Move the run's own record (if any) to failed_dir with the reason it ended; else write
    a short record there. Returns the attempt's path."""
    ending_attrs = {k: v for k, v in ending.items() if k not in ("status", "reason")}
    try:
        summary = read_summary(out) if out.exists() else None
    except RecordError:
        summary = None  # not a complete record: the short record below replaces it
    if summary is not None:
        target = attempt_path(failed_dir, spec["run_id"], summary.get("finished_at", iso(time.time())))
        own_error = summary.get("error", "")
        update_attrs(out, {"status": ending["status"],
                           "error": f"{ending['reason']} (the run's own record: {own_error})" if own_error
                           else ending["reason"],
                           "ended_by": json.dumps(ending_attrs)})
        failed_dir.mkdir(parents=True, exist_ok=True)
        out.rename(target)
        return target
    now = time.time()
    record = {
        "attrs": {"run_id": spec["run_id"], "campaign": spec.get("campaign", ""), "status": ending["status"],
                  "error": ending["reason"] + " (the run wrote no record of its own)",
                  "error_type": "Ended", "failed_phase": "", "started_at": iso(started_at),
                  "finished_at": iso(now), "recorded_by": "spikescale.supervise",
                  "ended_by": json.dumps(ending_attrs)},
        "spec": {"attrs": spec},
        "provenance": {"attrs": {"host": socket.gethostname()},
                       "slurm": {"attrs": provenance.slurm_variables()}},
    }
    target = attempt_path(failed_dir, spec["run_id"], record["attrs"]["finished_at"])
    write_record(target, record)
    if out.exists():
        out.unlink()  # an incomplete file: not a record
    return target


class Tee:
    """The run's output, line by line, to the console and to its log. The console may go
    away first (SIGTERM hits every process of the job): the log keeps everything."""

    def __init__(self, log_path: Path | None):
        self.log = open(log_path, "a", buffering=1) if log_path else None
        self.console = True

    def write(self, line: str) -> None:
        if self.log:
            self.log.write(line)
        if self.console:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (BrokenPipeError, OSError):
                self.console = False


JOB_LINE = "spikescale.supervise: SLURM job "


def where_line() -> str:
    """Where this attempt runs; in SLURM the job id, which lets the workflow find out later
    how a job on a lost node ended (reconcile_attempts)."""
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return f"spikescale.supervise: running on {node}, pid {os.getpid()}"
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    task = f" (array job {array}, task {os.environ.get('SLURM_ARRAY_TASK_ID')})" if array else ""
    return f"{JOB_LINE}{job}{task} on node {node}"


# What srun (or mpirun) says when it could not start the run's tasks at all: transient on a
# real cluster (seen here: "Task launch for StepId=21.0 failed on node n1: Zero Bytes were
# transmitted or received" a minute after a step on that node was killed).
LAUNCH_FAILURE = re.compile(r"srun: error: (Task launch for StepId=\S+ failed|Unable to create step|"
                            r"Job step creation temporarily disabled|.*Zero Bytes were transmitted)"
                            r"|mpirun was unable to launch")
# The harness's first line (spikescale.harness.execute): after it, the run has started, and a
# failure is the run's own, never a launch failure.
HARNESS_STARTED = re.compile(r"\] (\[rank \d+\] )?run \S+: backend ")
LAUNCH_RETRY_WAIT_S = (5.0, 15.0, 30.0)  # before the second, third, ... try


def launch_failure(lines: list[str]) -> str:
    """The launcher's complaint when the run's tasks never started (empty otherwise)."""
    if any(HARNESS_STARTED.search(line) for line in lines):
        return ""
    return next((line.strip() for line in lines if LAUNCH_FAILURE.search(line)), "")


def supervise(cmd: list[str], spec: dict, out: Path, failed_dir: Path, log_path: Path | None,
              launch_retries: int = 0) -> int:
    """Run the command; a launch failure (the tasks never started) is recorded as an attempt
    and tried again, at most launch_retries times, after a short wait."""
    attempt = 0
    while True:
        code, launch = _supervise_once(cmd, spec, out, failed_dir, log_path)
        if not launch or attempt == launch_retries:
            return code
        wait_s = LAUNCH_RETRY_WAIT_S[min(attempt, len(LAUNCH_RETRY_WAIT_S) - 1)]
        attempt += 1
        Tee(log_path).write(f"[{datetime.now():%H:%M:%S}] LAUNCH FAILED ({launch}); try {attempt + 1} of "
                            f"{launch_retries + 1} in {wait_s:g} s\n")
        time.sleep(wait_s)


def _supervise_once(cmd: list[str], spec: dict, out: Path, failed_dir: Path,
                    log_path: Path | None) -> tuple[int, str]:
    """One try: (exit code, the launcher's complaint if the tasks never started)."""
    started_at = time.time()
    terminated = []
    tee = Tee(log_path)
    tee.write(f"[{datetime.now():%H:%M:%S}] {where_line()}\n")
    # Its own process group, so that a SIGTERM reaches the launcher and the run behind a
    # shell (`module load ... && srun ...`), not only the shell.
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                             start_new_session=True)

    def on_signal(signum, frame):
        terminated.append(signum)
        if child.poll() is None:
            try:  # the run writes its record (under SLURM, SIGKILL follows after KillWait)
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    notices, head = [], []
    for line in child.stdout:
        tee.write(line)
        if "***" in line:
            notices.append(line)
        if len(head) < 200:
            head.append(line)
    returncode = child.wait()
    ending = ending_from_notices(notices)
    launch = launch_failure(head) if returncode != 0 and not out.exists() and not terminated and not ending else ""
    if launch:
        ending = {"status": "failed", "reason": f"launch failure: the run's tasks never started ({launch})",
                  "launch_failure": True}
    if not ending and terminated:
        ending = {"status": "failed", "reason": f"terminated by signal {signal.Signals(terminated[0]).name}"}
    if not ending and returncode in (128 + signal.SIGTERM, -signal.SIGTERM):
        # the run itself got the signal (a user's kill, a watchdog), not this supervisor
        ending = {"status": "failed", "reason": "terminated by signal SIGTERM sent to the run"}
    if not ending and returncode != 0 and not out.exists():
        how = (f"was killed by signal {signal.Signals(-returncode).name}" if returncode < 0
               and -returncode in signal.valid_signals() else f"exited with code {returncode}")
        ending = {"status": "failed", "reason": f"the run's command {how}"}
    if ending and os.environ.get("SLURM_JOB_ID"):
        ending.setdefault("slurm_job_id", os.environ["SLURM_JOB_ID"])
        ending.setdefault("slurm_job_state", "")  # known once the job is gone: reconcile_attempts
    if ending:
        target = set_attempt_aside(out, failed_dir, spec, ending, started_at)
        tee.write(f"[{datetime.now():%H:%M:%S}] RUN ENDED FROM OUTSIDE: {ending['reason']}; attempt recorded in "
                  f"{target}; the next snakemake runs it again\n")
        if log_path is not None and Path(log_path).exists():
            # the next attempt's job writes the same log: keep this one beside its record
            shutil.copyfile(log_path, target.with_suffix(".log"))
        return 1, launch
    # Ended by itself: its record (ok, or failed with the reason) is the job's output, also
    # after a failing rank ended the others with MPI_Abort (non-zero exit code).
    return (0 if out.exists() else 1), ""


def slurm_job_state(job_id: str) -> tuple[str, str]:
    """A finished job's state and node list: from squeue while slurmctld still lists it
    (MinJobAge), else from sacct (clusters with accounting); empty if neither can tell."""
    for argv in (["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%N"],
                 ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,NodeList"]):
        try:
            lines = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            continue
        if lines and "|" in lines[0]:
            state, nodes = lines[0].split("|", 1)
            return state.split()[0] if state.strip() else "", nodes.strip()  # sacct: "CANCELLED by 0"
    return "", ""


def _attempts_by_job(failed_dir: Path, run_id: str) -> dict:
    """job id -> attempt file, for the attempts of run_id that name their SLURM job."""
    found = {}
    for path in failed_dir.glob(f"{run_id}.*.h5"):
        try:
            ended_by = json.loads(read_summary(path).get("ended_by", "") or "{}")
        except (RecordError, ValueError):
            continue
        if ended_by.get("slurm_job_id"):
            found[str(ended_by["slurm_job_id"])] = (path, ended_by)
    return found


def reconcile_attempts(campaign_dir: Path, specs: dict) -> list[Path]:
    """On the login node, once jobs have ended: complete the records of attempts ended from
    outside with SLURM's final job state, and write one for a run whose job's first node
    was lost (its supervisor died with the node; its log names the job). specs: run id ->
    run spec for the runs of the campaign. Returns the attempt files written or completed."""
    changed = []
    failed_dir = campaign_dir / "failed"
    for run_id, spec in specs.items():
        log = campaign_dir / "logs" / "simulate" / f"{run_id}.log"
        if (campaign_dir / "runs" / f"{run_id}.h5").exists() or not log.exists():
            continue
        jobs = [line.split(JOB_LINE, 1)[1].split()[0] for line in log.read_text(errors="replace").splitlines()
                if JOB_LINE in line]
        known = _attempts_by_job(failed_dir, run_id)
        for job in dict.fromkeys(jobs):
            path, ended_by = known.get(job, (None, {}))
            if path is not None and ended_by.get("slurm_job_state"):
                continue  # complete already
            state, nodes = slurm_job_state(job)
            if state not in SLURM_END_STATES:
                continue
            ending = ending_from_slurm(state, job, nodes)
            if path is None:
                path = set_attempt_aside(campaign_dir / "runs" / f"{run_id}.h5", failed_dir, spec, ending,
                                         time.time())
                update_attrs(path, {"recorded_by": "spikescale.supervise.reconcile_attempts (login node: the "
                                                   "job's first node was lost with the run's supervisor)"})
            else:
                update_attrs(path, {"status": ending["status"],
                                    "error": f"{ending['reason']} ({read_summary(path).get('error', '')})",
                                    "ended_by": json.dumps({**ended_by, "slurm_job_state": state,
                                                            "slurm_job_nodes": nodes})})
            changed.append(path)
    return changed


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args:
        print("usage: python -m spikescale.supervise --spec JSON --out FILE --failed-dir DIR [--log FILE] -- CMD...",
              file=sys.stderr)
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--failed-dir", required=True, type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--launch-retries", type=int, default=0,
                        help="tries more after a launch failure (the machine file's slurm.launch_retries)")
    opts = parser.parse_args(args[:split])
    return supervise(args[split + 1:], json.loads(opts.spec), opts.out, opts.failed_dir, opts.log,
                     opts.launch_retries)


if __name__ == "__main__":
    sys.exit(main())
