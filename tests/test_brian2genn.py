"""The brian2genn backend: where brian2genn's GeNN comes from (the entry's genn_path, else
GENN_PATH, else `make genn`'s build in the cache); without GeNN planning stops with a message
that says what to do; with it (`make genn`, as `make test` and CI build it) a tiny run through
the harness in GeNN's CPU mode writes a complete record."""

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
from spikescale.software import default_genn_path, genn_missing, genn_path, missing_environment, setup_command

ENTRY = {"environment": {"kind": "venv"}, "versions": {"brian2": "2.5.4", "brian2genn": "1.7.0"}}


def fake_genn(folder):
    """What spikescale checks of a GeNN 4 tree (the real one: `make genn`)."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "genn-buildmodel.sh").write_text("")
    return folder


def test_missing_genn_is_named_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("GENN_PATH", raising=False)
    monkeypatch.setenv("SPIKESCALE_CACHE", str(tmp_path / "cache"))  # nothing built there
    message = missing_environment(ENTRY, "brian2genn", REPO)
    assert "not on PyPI" in message and "genn_path" in message and "GENN_PATH" in message
    assert "`make genn`" in message and f"has not built GeNN 4.9.0 into {tmp_path / 'cache' / 'genn-4.9.0'}" in message
    assert "config/software" in message and "README" in message
    wrong = missing_environment({**ENTRY, "genn_path": str(tmp_path)}, "brian2genn", REPO)
    assert f"genn_path '{tmp_path}' is not a GeNN 4.x installation" in wrong
    monkeypatch.setenv("GENN_PATH", str(tmp_path / "nowhere"))
    assert f"GENN_PATH '{tmp_path / 'nowhere'}' is not a GeNN 4.x installation" in genn_missing(ENTRY)
    # other backends do not need GeNN
    assert missing_environment({"environment": {"kind": "python", "interpreter": sys.executable}}, "brian2", REPO) is None


def test_genn_path_is_exported_for_the_run(tmp_path):
    fake_genn(tmp_path)
    entry = {**ENTRY, "genn_path": str(tmp_path)}
    assert setup_command(entry) == setup_command(entry, "brian2genn") == f"export GENN_PATH={tmp_path} && "
    assert missing_environment({**entry, "environment": {"kind": "python", "interpreter": sys.executable}},
                               "brian2genn", REPO) is None


def test_the_default_genn_is_make_genns_build_in_the_cache(monkeypatch, tmp_path):
    """Without genn_path and GENN_PATH, brian2genn takes GeNN from where `make genn` builds it,
    and the run gets it exported; genn_path, then GENN_PATH, override it."""
    monkeypatch.delenv("GENN_PATH", raising=False)
    monkeypatch.delenv("SPIKESCALE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_genn_path() == tmp_path / "xdg" / "spikescale" / "genn-4.9.0"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_genn_path() == tmp_path / "home" / ".cache" / "spikescale" / "genn-4.9.0"
    monkeypatch.setenv("SPIKESCALE_CACHE", str(tmp_path / "cache"))  # as envs/build_genn.sh reads it
    built = fake_genn(tmp_path / "cache" / "genn-4.9.0")
    assert genn_path(ENTRY) == (str(built), "the default") and genn_missing(ENTRY) is None
    assert setup_command(ENTRY, "brian2genn") == f"export GENN_PATH={built} && "
    assert setup_command({"environment": {"kind": "venv"}}, "brian2") == ""  # only brian2genn's runs
    other = fake_genn(tmp_path / "elsewhere")
    monkeypatch.setenv("GENN_PATH", str(other))
    assert genn_path(ENTRY) == (str(other), "GENN_PATH")
    assert setup_command(ENTRY, "brian2genn") == f"export GENN_PATH={other} && "
    assert genn_path({**ENTRY, "genn_path": str(built)}) == (str(built), "genn_path")


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
    env["SPIKESCALE_CACHE"] = str(tmp_path / "empty-cache")  # hides `make genn`'s build
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["brian2genn"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    proc = snakemake(config_dir, tmp_path / "results", "--dry-run", check=False, env=env)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "brian2genn needs GeNN 4.x, which is not on PyPI" in out and "genn_path" in out, out[-3000:]
    assert "make genn" in out, out[-3000:]


@pytest.mark.needs_genn  # .venvs/brian2genn and GeNN 4.9.0 (make genn)
def test_tiny_run_on_genn_cpu_mode(tmp_path, brian2genn_python):
    spec = run_spec(backend="brian2genn", record_spikes=True, threads_per_task=1, t_presim_ms=50.0, t_sim_ms=100.0)
    cmd = [str(brian2genn_python), "-m", "spikescale.harness", "--spec", json.dumps(spec),
           "--context", json.dumps({"software": ENTRY}), "--out", str(tmp_path / "run.h5")]
    # the GeNN a workflow run of ENTRY gets (setup_command): GENN_PATH, else make genn's build
    env = {**os.environ, "TMPDIR": str(tmp_path), "GENN_PATH": genn_path(ENTRY)[0]}
    env.pop("CUDA_PATH", None)  # GeNN's CPU backend (no GPU here; with one, CUDA would be taken)
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
    assert packages["brian2genn"] == "1.7.0" and packages["genn"] == "4.9.0"
    from spikescale.backends.brian2genn import gpu_visible

    if not gpu_visible():  # no GPU (CI): GeNN's CPU backend, whatever CUDA toolkit there is
        assert packages["brian2_device"] == "genn (CPU, single-threaded)"
    spikes = rec["ranks"]["0"]["spikes"]
    in_window = sum(int(np.count_nonzero(spikes[p]["times_ms"] > spec["t_presim_ms"])) for p in P.POPULATIONS)
    assert rec["ranks"]["0"]["counts"]["attrs"]["n_spikes_sim_counter"] == in_window == s["n_spikes"]
