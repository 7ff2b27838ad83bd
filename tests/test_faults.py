"""Fault injection on the local executor, for real: a run's harness ended by SIGTERM, run
out of memory (an address-space limit set on the live process), the disk filling while the
run record is written (a small tmpfs made for the test), the login-node snakemake killed
and restarted, two snakemake instances on one results directory.

Each test follows one scenario: run 1 finishes; run 2 starts and the fault hits it in its
simulation phase; then what was recorded is checked, the finished run's file is checked
byte for byte, and the workflow is re-run (after `make retry-failed` where the fault left a
failed record) until the campaign is complete. Each test notes its fault in the ledger that
tests/reliability_figures.py reads (runs lost must be 0). SIGKILL of a run is in
test_workflow.py, SLURM's cancel, time limit and lost node in test_slurm.py.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from helpers import REPO, SNAKEMAKE, checksums, edit_yaml, record_fault, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.needs_nest, pytest.mark.slow]


class Scenario:
    """A tiny campaign of two runs (seeds 1 and 2, one thread, 3 s of model time)."""

    def __init__(self, config_dir: Path, results: Path):
        self.config_dir, self.results = config_dir, results
        edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1], t_sim_ms=3000.0)
        edit_yaml(config_dir / "experiment" / "tiny.yaml",
                  axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
        self.out = results / "tiny"

    def run_ids(self) -> list[str]:
        from spikescale.config import load_campaign
        from spikescale.plan import plan_runs

        return [r.run_id for r in plan_runs(load_campaign("tiny", self.config_dir))]

    def finish_first_run(self) -> dict:
        snakemake(self.config_dir, self.results)
        (self.first,) = self.run_ids()
        edit_yaml(self.config_dir / "model" / "tiny.yaml", seeds=[1, 2])
        (self.second,) = [r for r in self.run_ids() if r != self.first]
        return checksums(self.out / "runs")

    def command(self, *args) -> list[str]:
        return [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(self.results.parent),
                "--cores", "2", "--config", "experiment=tiny", f"config_dir={self.config_dir}",
                f"results_dir={self.results}", *args]

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), cwd=self.results.parent, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def log(self, run_id: str) -> Path:
        return self.out / "logs" / "simulate" / f"{run_id}.log"

    def harness_in_simulation(self, run_id: str) -> psutil.Process:
        """The harness process of run_id, once its simulation phase has started."""
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, f"the simulation of {run_id} never started"
            log = self.log(run_id)
            if "phase simulate started" in (log.read_text() if log.exists() else ""):
                for proc in psutil.process_iter(["cmdline"]):
                    argv = proc.info["cmdline"] or []
                    if argv[1:3] == ["-m", "spikescale.harness"] and run_id in " ".join(argv):
                        return proc
            time.sleep(0.05)

    def converge(self, before: dict, fault: str, retry_failed: bool = False) -> pd.DataFrame:
        """Re-run until complete; the finished run's file must be untouched."""
        if retry_failed:
            subprocess.run([sys.executable, "-m", "spikescale.retry", str(self.out)], check=True, capture_output=True,
                           env=dict(os.environ))
        snakemake(self.config_dir, self.results)
        runs = pd.read_csv(self.out / "runs.csv")
        after = checksums(self.out / "runs")
        record_fault(fault, expected_runs=2, runs=runs, before=before, after=after)
        assert sorted(runs["run_id"]) == sorted([self.first, self.second]) and (runs["status"] == "ok").all()
        assert all(after[name] == digest for name, digest in before.items()), "a finished run file changed"
        # the campaign's checksums are those of the files
        assert dict(zip(runs["run_id"] + ".h5", runs["file_sha256"])) == after
        return runs


@pytest.fixture
def scenario(nest_python, config_dir, tmp_path):
    return Scenario(config_dir, tmp_path / "results")


def test_sigterm_of_a_run_is_recorded_and_redone(scenario):
    before = scenario.finish_first_run()
    smk = scenario.start()
    scenario.harness_in_simulation(scenario.second).send_signal(signal.SIGTERM)
    output, _ = smk.communicate(timeout=300)
    assert smk.returncode != 0
    assert not (scenario.out / "runs" / f"{scenario.second}.h5").exists()
    (attempt,) = (scenario.out / "failed").glob(f"{scenario.second}.*.h5")
    from spikescale.record import read_summary

    summary = read_summary(attempt)
    assert summary["status"] != "ok" and "SIGTERM" in summary["error"] + summary.get("summary.ending_reason", ""), summary
    scenario.converge(before, "SIGTERM of a run in its simulation phase")
    assert attempt.exists()  # the record of how the attempt ended is kept, and its log
    assert "phase simulate started" in attempt.with_suffix(".log").read_text()


def test_a_run_out_of_memory_is_recorded_and_redone(scenario):
    before = scenario.finish_first_run()
    smk = scenario.start()
    harness = scenario.harness_in_simulation(scenario.second)
    # From now on the run cannot map one more page: its next allocation fails, as on a
    # node whose memory is gone (an address-space limit, what `ulimit -v` sets).
    size = harness.memory_info().vms
    resource.prlimit(harness.pid, resource.RLIMIT_AS, (size, size))
    output, _ = smk.communicate(timeout=300)
    run_file = scenario.out / "runs" / f"{scenario.second}.h5"
    attempts = list((scenario.out / "failed").glob(f"{scenario.second}.*.h5"))
    from spikescale.record import read_summary

    if run_file.exists():  # the harness caught the failure and wrote its own record
        summary = read_summary(run_file)
        retry = True
    else:  # it died (NEST aborts on std::bad_alloc); the supervisor set the attempt aside
        (attempt,) = attempts
        summary = read_summary(attempt)
        assert "phase simulate started" in attempt.with_suffix(".log").read_text()
        retry = False
    assert summary["status"] == "failed", summary
    assert any(word in summary["error"] for word in ("Memory", "memory", "alloc", "signal", "exit")), summary["error"]
    scenario.converge(before, "run out of memory (address-space limit) in its simulation phase", retry_failed=retry)


def _mount_tmpfs(path: Path, size_kb: int) -> None:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], check=True)


@pytest.mark.needs_root  # mounts a small filesystem
def test_disk_full_while_the_record_is_written(scenario):
    scenario.results.parent.mkdir(parents=True, exist_ok=True)
    _mount_tmpfs(scenario.results, 64 * 1024)
    try:
        before = scenario.finish_first_run()
        smk = scenario.start()
        scenario.harness_in_simulation(scenario.second)
        # fill the disk while the run simulates: its record (and anything else) cannot be written
        filler = scenario.results / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        output, _ = smk.communicate(timeout=300)
        assert smk.returncode != 0
        assert "No space left on device" in output, output[-3000:]
        assert not (scenario.out / "runs" / f"{scenario.second}.h5").exists()
        assert not list((scenario.out / "runs").glob("*.tmp-*"))  # no partial record left behind
        assert checksums(scenario.out / "runs") == before
        filler.unlink()  # space again: the rerun completes the campaign
        scenario.converge(before, "disk full while the run record was written")
    finally:
        subprocess.run(["umount", "-l", str(scenario.results)], check=False)


def test_login_node_snakemake_killed_and_restarted(scenario):
    before = scenario.finish_first_run()
    smk = scenario.start()
    harness = scenario.harness_in_simulation(scenario.second)
    smk.send_signal(signal.SIGKILL)  # the workflow manager dies; its job goes on alone
    smk.communicate(timeout=60)
    harness.wait(timeout=300)
    restart = snakemake(scenario.config_dir, scenario.results, check=False)
    assert restart.returncode != 0 and "--unlock" in restart.stdout + restart.stderr  # snakemake says what to do
    snakemake(scenario.config_dir, scenario.results, "--unlock")
    scenario.converge(before, "login-node snakemake killed (SIGKILL) while a run simulated, then restarted")


def test_two_snakemake_instances_on_one_results_directory(scenario):
    before = scenario.finish_first_run()
    first = scenario.start()
    scenario.harness_in_simulation(scenario.second)
    second = snakemake(scenario.config_dir, scenario.results, check=False)
    assert second.returncode != 0
    assert "cannot be locked" in second.stdout + second.stderr  # refused: nothing written twice
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output[-3000:]
    runs = scenario.converge(before, "second snakemake started on the same results directory")
    assert len(runs) == 2
