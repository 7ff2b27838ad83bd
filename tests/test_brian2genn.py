"""The brian2genn backend: without GeNN planning stops with a message that says what to
set; with GeNN (GENN_PATH, not in CI: GeNN is not on PyPI) a tiny run through the harness
in GeNN's CPU mode writes a complete record."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, edit_yaml, run_spec, snakemake
from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P
from spikescale.record import read_record
from spikescale.software import missing_environment, setup_command

BRIAN2GENN_PYTHON = REPO / ".venvs" / "brian2genn" / "bin" / "python"
GENN_PATH = os.environ.get("GENN_PATH")
ENTRY = {"environment": {"kind": "venv"}, "versions": {"brian2": "2.5.4", "brian2genn": "1.7.0"}}


def test_missing_genn_is_named_with_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv("GENN_PATH", raising=False)
    message = missing_environment(ENTRY, "brian2genn", REPO)
    assert "not on PyPI" in message and "genn_path" in message and "GENN_PATH" in message
    assert "config/software" in message and "README" in message
    wrong = missing_environment({**ENTRY, "genn_path": str(tmp_path)}, "brian2genn", REPO)
    assert f"genn_path '{tmp_path}' is not a GeNN 4.x installation" in wrong
    # other backends do not need GeNN
    assert missing_environment({"environment": {"kind": "python", "interpreter": sys.executable}}, "brian2", REPO) is None


def test_genn_path_is_exported_for_the_run(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "genn-buildmodel.sh").write_text("")
    entry = {**ENTRY, "genn_path": str(tmp_path)}
    assert setup_command(entry) == f"export GENN_PATH={tmp_path} && "
    assert missing_environment({**entry, "environment": {"kind": "python", "interpreter": sys.executable}},
                               "brian2genn", REPO) is None


def test_genn_490_with_cuda_13_is_named_before_building(tmp_path):
    """GeNN 4.9.0's optimiser.cc against a CUDA 13 cuda.h (the lines as they are in both; seen
    failing to build on a lent H200 with CUDA 13.0)."""
    from spikescale.backends.brian2genn import cuda13_problem

    genn, cuda = tmp_path / "genn", tmp_path / "cuda"
    optimiser = genn / "src" / "genn" / "backends" / "cuda" / "optimiser.cc"
    optimiser.parent.mkdir(parents=True)
    (cuda / "include").mkdir(parents=True)
    optimiser.write_text("    CHECK_CU_ERRORS(cuCtxCreate(&cuContext, 0, cuDevice));\n")
    (cuda / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    problem = cuda13_problem(str(genn), str(cuda))
    assert "does not build with the CUDA 13.0 toolkit" in problem and "CUDA 12" in problem
    assert "docs/brian2.md" in problem
    (cuda / "include" / "cuda.h").write_text("#define CUDA_VERSION 12040\n")
    assert cuda13_problem(str(genn), str(cuda)) is None  # CUDA 12: GeNN 4.9.0 builds as released
    (cuda / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    optimiser.write_text("#if CUDA_VERSION >= 13000\n    CHECK_CU_ERRORS(cuCtxCreate(&cuContext, nullptr, 0, cuDevice));\n"
                         "#else\n    CHECK_CU_ERRORS(cuCtxCreate(&cuContext, 0, cuDevice));\n#endif\n")
    assert cuda13_problem(str(genn), str(cuda)) is None  # changed as docs/brian2.md says


def test_workflow_without_genn_stops_at_planning(config_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GENN_PATH"}
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["brian2genn"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    proc = snakemake(config_dir, tmp_path / "results", "--dry-run", check=False, env=env)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "brian2genn needs GeNN 4.x, which is not on PyPI" in out and "genn_path" in out, out[-3000:]


@pytest.mark.needs_genn  # GENN_PATH and .venvs/brian2genn (GeNN is not on PyPI: README, GeNN)
def test_tiny_run_on_genn_cpu_mode(tmp_path):
    spec = run_spec(backend="brian2genn", record_spikes=True, threads_per_task=1, t_presim_ms=50.0, t_sim_ms=100.0)
    cmd = [str(BRIAN2GENN_PYTHON), "-m", "spikescale.harness", "--spec", json.dumps(spec),
           "--context", json.dumps({"software": ENTRY}), "--out", str(tmp_path / "run.h5")]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("CUDA_PATH", None)  # GeNN's CPU backend
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = read_record(tmp_path / "run.h5")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"] + rec.get("traceback", "")
    phases = rec["ranks"]["0"]["phases"]
    assert sorted(phases, key=lambda p: phases[p]["attrs"]["order"]) == \
        ["setup", "create", "connect", "compile", "load", "presimulate", "simulate", "collect"]
    s = rec["summary"]["attrs"]
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    assert s["n_synapses"] == net.n_synapses and s["n_spikes"] > 0
    assert s["t_sim_s"] < s["t_compile_s"]
    timers = rec["ranks"]["0"]["kernel_timers"]["simulate"]["attrs"]
    assert timers["time_neuronUpdateTime"] > 0
    packages = rec["provenance"]["packages"]["attrs"]
    assert packages["brian2genn"] == "1.7.0" and packages["brian2_device"].startswith("genn")
    spikes = rec["ranks"]["0"]["spikes"]
    in_window = sum(int(np.count_nonzero(spikes[p]["times_ms"] > spec["t_presim_ms"])) for p in P.POPULATIONS)
    assert rec["ranks"]["0"]["counts"]["attrs"]["n_spikes_sim_counter"] == in_window == s["n_spikes"]
