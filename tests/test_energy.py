"""Energy meters and their sampler (spikescale.energy). This machine has no powercap and
no GPU: RAPL is tested against a file tree laid out like sysfs (tests/fake_powercap.py),
driven by a writer that advances the counters, through wraps and on two sockets."""

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fake_powercap import FakePowercap
from helpers import harness_command, harness_env, run_spec
from spikescale.energy import rapl
from spikescale.energy.sampler import Sampler
from spikescale.record import read_record


def test_rapl_finds_package_and_dram_zones_of_every_socket(tmp_path):
    FakePowercap(tmp_path, sockets=(0, 1, 10))  # socket 10 is intel-rapl:a
    meters, problems = rapl.discover(tmp_path)
    assert problems == []
    assert sorted(m.scope for m in meters) == ["dram-0", "dram-1", "dram-10", "package-0", "package-1", "package-10"]
    assert {m.kind for m in meters} == {"measured"} and {m.source for m in meters} == {"rapl"}
    assert all("mmio" not in str(m.path) for m in meters)


def test_rapl_unavailable_says_why(tmp_path):
    meters, problems = rapl.discover(tmp_path / "nothing")
    assert meters == [] and "no powercap interface" in problems[0].reason
    (tmp_path / "empty").mkdir()
    assert "no RAPL package or DRAM zones" in rapl.discover(tmp_path / "empty")[1][0].reason


@pytest.mark.needs_root  # root, to drop privileges for a real permission check
def test_rapl_root_only_counters_are_reported_as_permission_denied():
    # Outside pytest's private temp folder, which user nobody could not enter at all.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        fake = FakePowercap(Path(tmp) / "powercap", sockets=(0,))
        for zone in fake.zones.values():
            (zone / "energy_uj").chmod(0o400)  # as on Linux >= 5.10
        os.seteuid(65534)  # nobody: the kernel checks the permission for real
        try:
            meters, problems = rapl.discover(Path(tmp) / "powercap")
        finally:
            os.seteuid(0)
    assert meters == [] and problems
    assert all("permission denied" in p.reason and "CVE-2020-8694" in p.reason for p in problems)


def test_wrapping_counters_are_summed_modulo_their_range(tmp_path):
    fake = FakePowercap(tmp_path, sockets=(0, 1), range_uj=1_000_000, dram_range_uj=500_000)
    meters, _ = rapl.discover(tmp_path)
    by_scope = {m.scope: m for m in meters}
    fake.set("intel-rapl:0", 900_000)  # close to the wrap
    sampler = Sampler(meters, interval_s=0)  # no sampler process: readings taken by hand below
    sampler.start()
    sampler.mark("simulate")
    for _ in range(7):  # 7 x 0.3 J on package-0: wraps twice; 7 x 0.2 J on dram-1: wraps twice
        fake.advance("intel-rapl:0", 300_000)
        fake.advance("intel-rapl:1:2", 200_000)
        sampler.sample_now()
    sampler.mark("end")
    sampler.stop()
    energy = dict(zip((m.scope for m in meters), sampler.phase_energy_j()["simulate"]))
    assert energy["package-0"] == pytest.approx(2.1) and energy["dram-1"] == pytest.approx(1.4)
    assert energy["package-1"] == 0 and energy["dram-0"] == 0
    assert by_scope["package-0"].range_uj == 1_000_000


def test_readings_out_of_time_order_are_not_taken_for_wraps():
    """The harness and the sampler process read the same counter microseconds apart; their
    time stamps can come out in the wrong order. Only a true wrap may add a range."""
    from spikescale.energy.sampler import counter_delta

    assert counter_delta(900, 100, 1000) == 200  # wrapped: 900 -> 1000 = 0 -> 100
    assert counter_delta(500, 499, 1000) == -1  # read in the wrong order: cancelled by the next step
    assert counter_delta(500, 499, None) == -1 and counter_delta(5, 7, None) == 2

    class Counter:
        scope, source, kind, range_uj = "package-0", "rapl", "measured", 1000

        def describe(self):
            return {}

    sampler = Sampler([Counter()], interval_s=0)
    sampler.t0 = 0.0
    # (t, raw): 1.0 J per step, the reading at t=2.001 taken before the one stamped t=2.000
    sampler.readings = [(0.0, [100]), (1.0, [300]), (2.0, [520]), (2.001, [500]), (3.0, [700]), (4.0, [900]),
                        (5.0, [100])]
    sampler.marks = [("simulate", 0.0), ("end", 5.0)]
    assert sampler.phase_energy_j()["simulate"] == [pytest.approx(1000 / 1e6)]  # 100 -> 1100 uJ, no extra range


def test_sampler_process_against_a_live_writer(tmp_path, monkeypatch):
    """A writer advances two sockets in steps of 0.1 J and 0.06 J (50 W and 30 W at its
    nominal 2 ms pace, wrapping every 200 steps) while the sampler process reads at 100 Hz.
    Each phase's energy is what the writer wrote between its marks, wraps included.

    The expectation counts the writer's steps rather than assuming its pace: on a busy
    machine the writer thread is slowed too (seen in CI: 28 W measured for a nominal 50 W,
    the writer having fallen behind the clock), and the sampler must still be exact."""
    monkeypatch.setenv("SPIKESCALE_POWERCAP_ROOT", str(tmp_path))  # the sampler process finds the same zones
    range_uj, step_uj = 20_000_000, {"intel-rapl:0": 100_000, "intel-rapl:1": 60_000}
    fake = FakePowercap(tmp_path, sockets=(0, 1), range_uj=range_uj)
    meters, _ = rapl.discover(tmp_path)
    lock, stop, steps = threading.Lock(), threading.Event(), [0]

    def writer():
        while not stop.wait(0.002):
            with lock:
                for zone, uj in step_uj.items():
                    fake.advance(zone, uj)
                steps[0] += 1

    def mark_after(name, n_steps):
        """Waits until the writer has taken n_steps more steps, then marks (the writer held
        off, so the mark reads exactly the counter after that many steps)."""
        target = steps[0] + n_steps
        while steps[0] < target:
            time.sleep(0.005)
        with lock:
            sampler.mark(name)
            return steps[0]

    recipe = {"energy": {"rapl": True, "nvml": False}, "busy_cores": 1}
    sampler = Sampler(meters, interval_s=0.01, recipe=recipe).start()
    assert sampler.sampler_startup_s is not None  # start() returned once the process was reading
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        at = {"create": mark_after("create", 0)}
        at["simulate"] = mark_after("simulate", 150)  # 15 J on package-0: one wrap or none
        at["end"] = mark_after("end", 300)  # 30 J: at least one wrap
        sampler.stop()
    finally:
        stop.set()
        thread.join()
    phases = sampler.phase_energy_j()
    scopes = [m.scope for m in meters]
    for phase, following in (("create", "simulate"), ("simulate", "end")):
        n = at[following] - at[phase]
        energy = dict(zip(scopes, phases[phase]))
        assert energy["package-0"] == pytest.approx(n * 0.1, abs=1e-9)
        assert energy["package-1"] == pytest.approx(n * 0.06, abs=1e-9)
        assert energy["dram-0"] == 0 and energy["dram-1"] == 0
    assert phases["simulate"][scopes.index("package-0")] > range_uj / 1e6  # more than a whole range: wraps caught
    process_readings = len(sampler.readings) - len(sampler.marks) - 2  # less those of start() and stop()
    assert process_readings > 10  # the sampler process's readings, merged
    margins = dict(zip(scopes, sampler.wrap_margin()))
    assert margins["package-0"] > 0  # recorded (its value depends on the writer's bursts here)
    tree = sampler.tree()
    assert tree["package-0"]["attrs"]["energy_simulate_j"] == pytest.approx(phases["simulate"][0])
    assert tree["attrs"]["sampler_startup_s"] > 0
    assert len(tree["package-0"]["t_s"]) == len(tree["package-0"]["energy_j"]) == len(sampler.readings)
    assert tree["attrs"]["sampled_by"] == "process" and tree["attrs"]["read_errors"] == ""


# -- in the run record ----------------------------------------------------------------------

def run_with_energy(tmp_path, context, env_extra=None, writer_watts=None, **spec_changes):
    """One harness run (real NEST); optionally a writer advancing a fake powercap tree at
    writer_watts on package-0 while it runs."""
    spec = run_spec(t_sim_ms=1000.0, **spec_changes)
    out = tmp_path / "run.h5"
    env = {**harness_env(), **(env_extra or {})}
    stop = threading.Event()
    threads = []
    if writer_watts:
        # wraps every 0.6 s at 10 W, several times a run. A writer thread held off the CPU for
        # longer than one wrap period jumps a whole range at once, which a real counter never
        # does (seen once in CI under load with 0.3 s: exactly one 3 J range lost).
        fake = FakePowercap(tmp_path / "powercap", sockets=(0,), range_uj=6_000_000)
        env["SPIKESCALE_POWERCAP_ROOT"] = str(fake.root)

        def writer():
            last = time.monotonic()
            while not stop.wait(0.002):
                now = time.monotonic()
                fake.advance("intel-rapl:0", int(writer_watts * 1e6 * (now - last)))
                last = now

        threads.append(threading.Thread(target=writer))
        threads[0].start()
    try:
        proc = subprocess.run(harness_command(spec, out, context), env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return read_record(out), proc.stdout


@pytest.mark.needs_nest
def test_no_sensor_here_is_recorded_as_unavailable_with_reasons(nest_python, tmp_path):
    rec, console = run_with_energy(tmp_path, {}, {"SPIKESCALE_POWERCAP_ROOT": str(tmp_path / "none")})
    summary = rec["summary"]["attrs"]
    assert rec["attrs"]["status"] == "ok"  # the run itself succeeds
    assert summary["energy_sim_j"] == "" and summary["esyn_uj"] == ""  # nothing estimated in secret
    assert summary["energy_source"].startswith("unavailable: ")
    assert "rapl: no powercap interface" in summary["energy_source"] and "nvml: " in summary["energy_source"]
    assert "energy: rapl unavailable" in console


@pytest.mark.needs_nest
def test_measured_energy_per_phase_and_per_synaptic_event(nest_python, tmp_path):
    """RAPL (a fake sysfs tree, 10 W on package-0, wrapping every 0.6 s) through the whole
    harness: phase energies follow the phase times, esyn_uj follows from them."""
    machine = {"machine": {"energy": {"nvml": False, "sampling_hz": 20}}}
    rec, _ = run_with_energy(tmp_path, machine, writer_watts=10.0)
    summary = rec["summary"]["attrs"]
    assert summary["energy_kind"] == "measured"
    assert summary["energy_source"] == "measured: rapl dram-0, rapl package-0 on 1 node(s)"
    assert summary["energy_sim_j"] == pytest.approx(10.0 * summary["t_sim_s"], rel=0.2, abs=0.05)
    assert summary["esyn_uj"] == pytest.approx(summary["energy_sim_j"] / summary["synaptic_events"] * 1e6)
    assert "nvml: switched off" in summary["energy_unavailable"]
    meters = rec["ranks"]["0"]["energy"]["meters"]
    package = meters["package-0"]
    assert package["attrs"]["kind"] == "measured" and package["attrs"]["source"] == "rapl"
    assert len(package["t_s"]) == len(package["energy_j"]) >= 2 and package["energy_j"][-1] > 0
    assert package["attrs"]["energy_simulate_j"] == pytest.approx(summary["energy_sim_j"], abs=1e-6)  # dram: 0 W
    # the power time series, from the counter: about 10 W while the writer ran
    assert len(package["power_w"]) == len(package["power_t_s"]) >= 10
    assert float(np.median(package["power_w"])) == pytest.approx(10.0, rel=0.25)


@pytest.mark.needs_nest
def test_power_model_is_labelled_modelled_and_idle_is_measured_beside(nest_python, tmp_path):
    machine = {"machine": {"energy": {"rapl": False, "nvml": False, "idle_measurement_s": 0.5,
                                      "power_model": {"enabled": True, "idle_w_per_node": 40.0,
                                                      "w_per_busy_core": 5.0}}}}
    rec, _ = run_with_energy(tmp_path, machine, threads_per_task=2)
    summary = rec["summary"]["attrs"]
    assert summary["energy_kind"] == "modelled" and summary["energy_source"].startswith("modelled: model node")
    assert summary["energy_sim_j"] == pytest.approx(50.0 * summary["t_sim_s"], rel=0.05, abs=0.02)
    assert summary["idle_power_w"] == pytest.approx(50.0, rel=0.01)  # a model knows no idle: same power
    assert summary["energy_sim_net_j"] == pytest.approx(0.0, abs=0.05)


@pytest.mark.needs_nest
def test_nvml_absence_here_is_an_answer(nest_python):
    """No NVIDIA driver on this machine: the real binding (installed in the NEST environment)
    says so, and that is recorded as the reason."""
    code = "from spikescale.energy import nvml; m, u = nvml.discover(); print(len(m)); print(u[0].reason)"
    out = subprocess.run([str(nest_python), "-c", code], env=harness_env(), capture_output=True, text=True,
                         timeout=60)
    count, reason = out.stdout.strip().splitlines()
    assert count == "0" and reason.startswith("NVML could not start (NVML Shared Library Not Found)"), out.stderr


# -- SLURM accounting ------------------------------------------------------------------------

# What this machine's slurmdbd (Debian 22.05, MariaDB, no energy plugin) answered for a job
# with two steps: `sacct -n -P -j 1 -o JobIDRaw,State,ElapsedRaw,ConsumedEnergyRaw,NNodes,NodeList`.
SACCT_NO_ENERGY = "1|COMPLETED|2|0|1|n1\n1.batch|COMPLETED|2|0|1|n1\n1.0|COMPLETED|2|0|1|n1\n1.1|COMPLETED|0|0|1|n1\n"
# The same layout with an energy plugin (values made up for the test: no plugin can measure here).
SACCT_WITH_ENERGY = "7|COMPLETED|60|25210|2|n[1-2]\n7.batch|COMPLETED|60|12000|1|n1\n7.0|COMPLETED|58|24870|2|n[1-2]\n"


def test_sacct_energy_of_the_runs_step():
    from spikescale.energy.accounting import parse_sacct, step_energy

    rows = parse_sacct(SACCT_WITH_ENERGY)
    energy, source = step_energy(rows, "7", "0")
    assert energy == 24870.0 and source.startswith("accounted: sacct ConsumedEnergyRaw of 7.0 (2 node(s)")
    assert step_energy(rows, "7", "")[0] == 25210.0  # no step id: the whole job
    energy, source = step_energy(parse_sacct(SACCT_NO_ENERGY), "1", "0")
    assert energy is None and "reports no energy for 1.0 (ConsumedEnergyRaw 0" in source  # never 0 J
    assert step_energy(rows, "8", "0") == (None, "unavailable: sacct has no record of 8.0")


def test_accounted_energy_says_why_not():
    from spikescale.energy.accounting import accounted_energy

    runs = [{"slurm_job_id": ""}, {"slurm_job_id": "7", "slurm_step_id": "0"}]
    no_accounting = accounted_energy(runs, {"slurm": {"accounting": False}})
    assert no_accounting[0] == ("", "unavailable: not a SLURM job")
    assert "slurm.accounting false" in no_accounting[1][1]
    no_sacct = accounted_energy(runs, {"slurm": {"accounting": True}}, env={"PATH": "/nonexistent"})
    assert no_sacct[1] == ("", "unavailable: sacct is not installed here")
