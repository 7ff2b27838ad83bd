"""The run harness on real NEST 3.10 at small scale: phases, timers, counts, spikes,
provenance, and every way a run can end (ok, raised, out of memory, SIGTERM, SIGKILL)."""

import json
import resource
import signal
import subprocess
import time

import numpy as np
import pytest

from helpers import harness_command, harness_env, run_harness, run_spec
from spikescale import columns
from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P
from spikescale.record import read_record

pytestmark = pytest.mark.needs_nest


@pytest.fixture(scope="module")
def recorded(nest_python, tmp_path_factory):
    """One validation-style run (spikes recorded) shared by the tests below."""
    spec = run_spec(record_spikes=True, threads_per_task=2)
    out = tmp_path_factory.mktemp("run") / "run.h5"
    proc = run_harness(spec, out, {"software": {"versions": {"nest-simulator": "3.10.0"}}})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return spec, read_record(out), proc.stdout


def test_ok_run_has_every_phase_in_order(recorded):
    spec, rec, _ = recorded
    assert rec["attrs"]["status"] == "ok" and rec["attrs"]["error"] == ""
    phases = rec["ranks"]["0"]["phases"]
    assert sorted(phases, key=lambda p: phases[p]["attrs"]["order"]) == \
        ["setup", "create", "connect", "presimulate", "simulate", "collect"]
    for attrs in (p["attrs"] for p in phases.values()):
        assert attrs["wall_s"] > 0 and attrs["mem_rss_mb"] > 10 and attrs["mem_peak_mb"] >= attrs["mem_rss_mb"] * 0.5
    s = rec["summary"]["attrs"]
    assert s["t_construct_s"] == pytest.approx(s["t_create_s"] + s["t_connect_s"])
    assert s["rtf"] == pytest.approx(s["t_sim_s"] / (spec["t_sim_ms"] / 1000))
    assert s["t_total_s"] > s["t_construct_s"] + s["t_presim_s"] + s["t_sim_s"]
    assert s["mem_peak_scope"] in ("phase", "process")
    assert s["platform"] == "cpu" and s["emulated"] is False  # as the backend declares (spikescale.backends)
    # every runs.csv column that spikescale.columns says NEST fills is in the summary
    assert set(columns.filled_by("nest")) <= set(s), set(columns.filled_by("nest")) - set(s)


def test_counts_match_the_model(recorded):
    spec, rec, _ = recorded
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    s = rec["summary"]["attrs"]
    assert s["n_neurons"] == net.n_neurons == 1544
    assert s["n_synapses"] == net.n_synapses  # measured in NEST: its own synapse model
    assert rec["ranks"]["0"]["counts"]["attrs"]["n_virtual_processes"] == 2


def test_kernel_timers_keep_presimulation_apart(recorded):
    _, rec, _ = recorded
    timers = rec["ranks"]["0"]["kernel_timers"]
    assert set(timers) == {"construction", "presimulate", "simulate"}
    s = rec["summary"]["attrs"]
    # NEST resets time_simulate at each Simulate(): each phase has its own value,
    # close to the harness's wall time of that phase.
    assert timers["simulate"]["attrs"]["time_simulate"] == pytest.approx(s["t_sim_s"], rel=0.2, abs=0.02)
    assert timers["presimulate"]["attrs"]["time_simulate"] == pytest.approx(s["t_presim_s"], rel=0.2, abs=0.02)
    assert timers["construction"]["attrs"]["time_construction_connect"] > 0
    assert np.asarray(timers["simulate"]["time_communicate_prepare"]).shape == (2,)  # per thread


def test_spikes_recorded_and_counted(recorded):
    spec, rec, _ = recorded
    spikes = rec["ranks"]["0"]["spikes"]
    assert set(spikes) == set(P.POPULATIONS)
    per_pop = rec["ranks"]["0"]["spikes_sim_by_population"]
    in_window = [int(np.count_nonzero(spikes[p]["times_ms"] > spec["t_presim_ms"])) for p in P.POPULATIONS]
    assert list(per_pop) == in_window
    s = rec["summary"]["attrs"]
    assert s["n_spikes"] == sum(in_window) > 0
    # the kernel's own counter of the last Simulate() agrees with the recorders
    assert rec["ranks"]["0"]["counts"]["attrs"]["n_spikes_sim_counter"] == s["n_spikes"]
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    assert s["synaptic_events"] == pytest.approx(float(np.dot(per_pop, net.out_degree)))
    # senders belong to their population
    first = rec["ranks"]["0"]["population_first_ids"]
    for i, pop in enumerate(P.POPULATIONS):
        senders = spikes[pop]["senders"]
        assert np.all((senders >= first[i]) & (senders < first[i] + net.num_neurons[i]))


def test_provenance(recorded):
    _, rec, _ = recorded
    prov = rec["provenance"]
    assert prov["packages"]["attrs"]["nest-simulator"] == "3.10.0"
    assert prov["packages"]["attrs"]["nest_have_mpi"] is False
    for key in ("host", "cpu_model", "cores_logical", "git_commit", "config_sha256", "os"):
        assert prov["attrs"][key] != ""
    assert len(prov["attrs"]["config_sha256"]) == 64
    assert rec["attrs"]["started_at"] < rec["attrs"]["finished_at"]


def test_progress_is_logged(recorded):
    *_, stdout = recorded
    for phase in ("setup", "create", "connect", "presimulate", "simulate", "collect"):
        assert f"phase {phase} done" in stdout


def test_performance_run_counts_spikes_without_recording(nest_python, tmp_path):
    spec = run_spec(seed=3)
    assert run_harness(spec, tmp_path / "a.h5").returncode == 0
    rec = read_record(tmp_path / "a.h5")
    assert "spikes" not in rec["ranks"]["0"]
    s = rec["summary"]["attrs"]
    assert s["n_spikes"] > 0 and "kernel counter" in s["synaptic_events_method"]
    assert s["energy_source"].startswith("unavailable: ")


def test_same_seed_same_activity_other_seed_other_activity(nest_python, tmp_path):
    counts = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert run_harness(run_spec(seed=seed), tmp_path / f"{name}.h5").returncode == 0
        counts.append(read_record(tmp_path / f"{name}.h5")["summary"]["attrs"]["n_spikes"])
    assert counts[0] == counts[1] != counts[2]


def test_a_run_that_raises_records_the_error(nest_python, tmp_path):
    context = {"software": {"versions": {"nest-simulator": "9.9.9"}}}
    proc = run_harness(run_spec(), tmp_path / "f.h5", context)
    assert proc.returncode == 0  # the record is the job's output; its status says failed
    rec = read_record(tmp_path / "f.h5")
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup"
    assert "nest-simulator: expected 9.9.9, found 3.10.0" in rec["attrs"]["error"]
    assert "Traceback" in rec["traceback"]
    assert rec["summary"]["attrs"]["t_sim_s"] == ""  # never reached: empty, not zero
    assert "RUN FAILED" in proc.stdout


def test_out_of_memory_is_recorded(nest_python, tmp_path):
    """A real out-of-memory failure: an address-space limit below what connecting needs."""
    limit = 500 * 1024 * 1024

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    spec = run_spec(n_scaling=0.2, k_scaling=0.2, t_sim_ms=100.0)
    proc = subprocess.run(harness_command(spec, tmp_path / "oom.h5"), env=harness_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=limit_memory)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = read_record(tmp_path / "oom.h5")
    assert rec["attrs"]["status"] == "failed"
    assert rec["attrs"]["failed_phase"] in ("create", "connect")
    assert "MemoryError" in rec["attrs"]["error"] or "alloc" in rec["attrs"]["error"]
    assert "create" in rec["ranks"]["0"]["phases"]  # what was done before is kept


def _start_and_wait_for_phase(spec, out, phase, timeout=120):
    proc = subprocess.Popen(harness_command(spec, out), env=harness_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if f"phase {phase} started" in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"phase {phase} never started")


def test_sigterm_mid_simulation_records_failure(nest_python, tmp_path):
    out = tmp_path / "term.h5"
    proc = _start_and_wait_for_phase(run_spec(t_sim_ms=3000.0), out, "simulate")
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, rest  # the record is written, and says how it ended
    rec = read_record(out)
    assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "simulate"
    assert "terminated by signal SIGTERM" in rec["attrs"]["error"]


def test_sigkill_leaves_no_run_file(nest_python, tmp_path):
    out = tmp_path / "kill.h5"
    proc = _start_and_wait_for_phase(run_spec(t_sim_ms=3000.0), out, "simulate")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []  # nothing that could pass for a finished run


SLICED_VS_WHOLE = """
import json, sys
from spikescale.backends.nest import NestBackend
spec = json.loads(sys.argv[1])
counts = []
for progress in (None, lambda done, total: None):
    b = NestBackend(spec)
    b.import_simulator(); b.setup(); b.create(); b.connect()
    b.simulate(spec["t_sim_ms"], progress=progress)
    counts.append({pop: [float(x) for x in times] for pop, (_, times) in b.spikes().items()})
print(json.dumps(counts[0] == counts[1] and sum(map(len, counts[0].values())) > 0))
"""


def test_long_simulations_run_in_logged_slices_with_the_same_spikes(nest_python, tmp_path):
    """Slices (Prepare, Run x 10, Cleanup) give progress and a place to handle SIGTERM;
    the network's spikes must be exactly those of one Simulate call."""
    spec = run_spec(t_sim_ms=2000.0, record_spikes=True)
    proc = subprocess.run([str(nest_python), "-c", SLICED_VS_WHOLE, json.dumps(spec)], env=harness_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "true", proc.stdout[-2000:] + proc.stderr[-2000:]
    out = run_harness(spec, tmp_path / "r.h5").stdout
    assert "1000 of 2000 ms model time (50 %)" in out
