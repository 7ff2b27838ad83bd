"""Helpers shared by the tests: paths, a tiny PD14 campaign, and ways to run the harness
and the workflow for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NEST_PYTHON = REPO / ".venvs" / "nest" / "bin" / "python"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

# A PD14 small enough for tests on 2 cores (1,544 neurons, ~120 k synapses, ~0.2 s per run).
TINY_MODEL = {
    "description": "tiny PD14 for tests",
    "model": "pd14", "n_scaling": 0.02, "k_scaling": 0.02, "drive": "poisson",
    "t_presim_ms": 100.0, "t_sim_ms": 200.0, "dt_ms": 0.1,
    "thalamic_input": False, "record_spikes": False, "seeds": [1, 2],
}
TINY_EXPERIMENT = {
    "name": "tiny", "model": "tiny", "machine": "local", "software": "default", "scaling": "strong",
    "backends": ["nest"], "axes": {"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1, 2]},
    "repetitions": 1,
}


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def edit_yaml(path: Path, **changes) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def run_spec(**overrides) -> dict:
    """A run spec as the plan makes it, for driving the harness directly."""
    from spikescale.plan import make_run_id

    params = {k: TINY_MODEL[k] for k in ("model", "n_scaling", "k_scaling", "drive", "t_presim_ms", "t_sim_ms",
                                         "dt_ms", "thalamic_input", "record_spikes")}
    params.update(backend="nest", machine="local", seed=1, repetition=0, nodes=1, tasks_per_node=1,
                  threads_per_task=1)
    params.update(overrides)
    return {"run_id": make_run_id(params), "campaign": "test", **params}


def harness_command(spec: dict, out: Path, context: dict | None = None) -> list[str]:
    """The harness's command line as the workflow builds it (spikescale.jobs), on NEST."""
    from spikescale.jobs import harness_argv

    return harness_argv(NEST_PYTHON, spec, out, context)


def harness_env() -> dict:
    return dict(os.environ)


def run_harness(spec: dict, out: Path, context: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(harness_command(spec, out, context), env=harness_env(), capture_output=True, text=True,
                          timeout=300, **kwargs)


def snakemake(config_dir: Path, results: Path, *args, experiment: str = "tiny", check: bool = True,
              timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real workflow on a campaign of config_dir, results under results/ (env: the
    environment, e.g. a test SLURM cluster's)."""
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(results.parent), "--cores", "2",
           "--config", f"experiment={experiment}", f"config_dir={config_dir}", f"results_dir={results}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=results.parent, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def checksums(folder: Path) -> dict:
    """{file name: sha256} of the run files in folder, as collect computes it."""
    from spikescale.store import file_sha256

    return {p.name: file_sha256(p) for p in sorted(Path(folder).glob("*.h5"))}


def record_fault(fault: str, expected_runs: int, runs, before: dict, after: dict) -> dict:
    """Note an injected fault and its outcome in the ledger that tests/reliability_figures.py
    reads ($SPIKESCALE_FAULT_LEDGER; conftest.py sets it for every pytest session). A run is
    lost when the converged campaign lacks it as ok, or when a file finished before the
    fault changed."""
    ok = int((runs["status"] == "ok").sum())
    changed = sum(1 for name, digest in before.items() if after.get(name) != digest)
    entry = {"fault": fault, "expected_runs": expected_runs, "ok_runs": ok, "changed_finished_files": changed,
             "runs_lost": max(0, expected_runs - ok) + changed}
    ledger = os.environ.get("SPIKESCALE_FAULT_LEDGER")
    if ledger:
        Path(ledger).parent.mkdir(parents=True, exist_ok=True)
        with open(ledger, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    return entry
