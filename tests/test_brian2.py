"""The brian2 backend (Brian2's cpp_standalone device): the builder draws what derive()
says, a run through the harness writes a complete record with every phase, and a campaign
with NEST and Brian2 runs both and plots them side by side."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import REPO, TINY_MODEL, edit_yaml, run_spec, snakemake
from spikescale import columns
from spikescale.models.pd14 import brian2_builder as B
from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P
from spikescale.record import read_record

BRIAN2_PYTHON = REPO / ".venvs" / "brian2" / "bin" / "python"
CONTEXT = {"software": {"versions": {"brian2": "2.9.0"}}}


@pytest.fixture(scope="session")
def brian2_python():
    """The Brian2 environment; its tests are marked needs_brian2, which conftest checks first."""
    return BRIAN2_PYTHON


# --- the builder (numpy only) -------------------------------------------------------------

@pytest.fixture(scope="module")
def drawn():
    net = derived.derive(0.05, 0.05, "poisson")
    return net, B.draw_recurrent(np.random.default_rng(3), net, 0.1)


def _pair_of(net, sources, targets):
    edges = np.cumsum(net.num_neurons)
    return np.searchsorted(edges, targets, side="right"), np.searchsorted(edges, sources, side="right")


def test_synapse_counts_per_pair_are_exactly_derive(drawn):
    net, (sources, targets, _, _) = drawn
    assert len(sources) == net.n_synapses
    tgt_pop, src_pop = _pair_of(net, sources, targets)
    counts = np.zeros_like(net.num_synapses)
    np.add.at(counts, (tgt_pop, src_pop), 1)
    assert (counts == net.num_synapses).all()
    assert sources.max() < net.n_neurons and targets.min() >= 0


def test_weights_keep_sign_mean_and_spread(drawn):
    net, (sources, targets, weights, _) = drawn
    tgt_pop, src_pop = _pair_of(net, sources, targets)
    for i in range(8):
        for j in range(8):
            w = weights[(tgt_pop == i) & (src_pop == j)]
            if len(w) < 500:
                continue
            mean = net.weight_mean_pA[i, j]
            assert np.all(np.sign(w) == np.sign(mean))
            assert w.mean() == pytest.approx(mean, rel=0.02)
            assert w.std() == pytest.approx(abs(mean) * P.WEIGHT_REL_STD, rel=0.1)


def test_delays_on_the_grid_at_least_one_step_means_as_derive(drawn):
    net, (sources, targets, _, delays) = drawn
    steps = delays / 0.1
    assert np.allclose(steps, np.round(steps)) and steps.min() >= 1
    tgt_pop, src_pop = _pair_of(net, sources, targets)
    exc = np.isin(src_pop, [0, 2, 4, 6])
    # redrawing below half a step makes them a normal truncated there: its mean is higher
    for sel, mean in ((exc, P.DELAY_EXC_MEAN_MS), (~exc, P.DELAY_INH_MEAN_MS)):
        sd = mean * P.DELAY_REL_STD
        truncated = stats.truncnorm((0.05 - mean) / sd, np.inf, loc=mean, scale=sd)
        assert delays[sel].mean() == pytest.approx(truncated.mean(), rel=0.01)
        assert delays[sel].std() == pytest.approx(np.sqrt(truncated.var() + 0.1**2 / 12), rel=0.05)


def test_initial_potentials_and_thalamus():
    net = derived.derive(0.05, 0.05, "poisson", thalamic_input=True)
    rng = np.random.default_rng(1)
    v = B.initial_potentials_mV(rng, net)
    assert len(v) == net.n_neurons
    first = v[: net.num_neurons[0]]
    assert first.mean() == pytest.approx(P.V0_MEAN_MV[0], abs=0.5)
    s, t, w, d = B.draw_thalamic(rng, net, 0.1)
    assert len(s) == net.num_th_synapses.sum() and s.max() < P.THALAMUS["num_neurons"]
    assert (w > 0).all() and w.mean() == pytest.approx(net.weight_th_pA, rel=0.02)
    offsets = B.population_offsets(net)
    l4e = (t >= offsets[2]) & (t < offsets[3])
    assert l4e.sum() == net.num_th_synapses[2]


# --- a run through the harness (real Brian2, real compiler) -------------------------------

def _harness(spec, out, **env):
    cmd = [str(BRIAN2_PYTHON), "-m", "spikescale.harness", "--spec", json.dumps(spec),
           "--context", json.dumps(CONTEXT), "--out", str(out)]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def recorded(brian2_python, tmp_path_factory):
    spec = run_spec(backend="brian2", record_spikes=True, threads_per_task=2)
    out = tmp_path_factory.mktemp("run") / "run.h5"
    proc = _harness(spec, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return spec, read_record(out), proc.stdout


@pytest.mark.needs_brian2
def test_record_has_every_phase_and_times_the_runs_only(recorded):
    spec, rec, log = recorded
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    phases = rec["ranks"]["0"]["phases"]
    assert sorted(phases, key=lambda p: phases[p]["attrs"]["order"]) == \
        ["setup", "create", "connect", "compile", "load", "presimulate", "simulate", "collect"]
    s = rec["summary"]["attrs"]
    # every runs.csv column that spikescale.columns says Brian2 fills is in the summary
    assert set(columns.filled_by("brian2")) <= set(s), set(columns.filled_by("brian2")) - set(s)
    # the compilation is its own phase, never part of the simulation
    assert s["t_compile_s"] > 2 and s["t_sim_s"] < s["t_compile_s"] / 3
    assert s["rtf"] == pytest.approx(s["t_sim_s"] / (spec["t_sim_ms"] / 1000))
    timers = rec["ranks"]["0"]["kernel_timers"]
    assert timers["simulate"]["attrs"]["time_simulate"] == pytest.approx(s["t_sim_s"], rel=0.3, abs=0.05)
    assert timers["presimulate"]["attrs"]["time_simulate"] == pytest.approx(s["t_presim_s"], rel=0.3, abs=0.05)
    assert rec["provenance"]["packages"]["attrs"]["brian2"] == "2.9.0"
    assert rec["ranks"]["0"]["counts"]["attrs"]["n_virtual_processes"] == 2


@pytest.mark.needs_brian2
def test_peak_memory_counts_the_compiled_program(recorded):
    """The simulation runs in Brian2's compiled program, a child of the rank: its memory is
    part of the phase's peak (the run's own process alone would understate what a node needs)."""
    _, rec, _ = recorded
    phases = rec["ranks"]["0"]["phases"]
    for name in ("load", "presimulate", "simulate"):
        attrs = phases[name]["attrs"]
        assert attrs["mem_children_peak_mb"] > 5, (name, attrs)  # the program holds the network
        assert attrs["mem_peak_mb"] > attrs["mem_children_peak_mb"]
    assert phases["setup"]["attrs"]["mem_children_peak_mb"] == 0  # no program yet
    peaks = [p["attrs"]["mem_peak_mb"] for p in phases.values()]
    assert rec["summary"]["attrs"]["mem_peak_mb_max"] == pytest.approx(max(peaks))


@pytest.mark.needs_brian2
def test_counts_and_spikes_as_nest_lays_them_out(recorded):
    spec, rec, _ = recorded
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    s = rec["summary"]["attrs"]
    assert s["n_neurons"] == net.n_neurons and s["n_synapses"] == net.n_synapses
    rank = rec["ranks"]["0"]
    assert set(rank["spikes"]) == set(P.POPULATIONS)
    first = list(rank["population_first_ids"])
    assert first == [1 + int(o) for o in B.population_offsets(net)]
    for p, pop in enumerate(P.POPULATIONS):
        senders = rank["spikes"][pop]["senders"]
        assert ((senders >= first[p]) & (senders < first[p] + net.num_neurons[p])).all()
    in_window = [int(np.count_nonzero(rank["spikes"][p]["times_ms"] > spec["t_presim_ms"])) for p in P.POPULATIONS]
    assert s["n_spikes"] == sum(in_window) > 0
    # the program's own count of the simulation phase agrees with the monitor
    assert rank["counts"]["attrs"]["n_spikes_sim_counter"] == s["n_spikes"]
    assert 0.2 < s["rate_mean_hz"] < 5  # NEST gives about 0.8 spikes/s at this scale


@pytest.mark.needs_brian2
def test_performance_run_counts_spikes_without_recording(brian2_python, tmp_path):
    spec = run_spec(backend="brian2", record_spikes=False, threads_per_task=1, t_presim_ms=50.0, t_sim_ms=100.0)
    proc = _harness(spec, tmp_path / "run.h5", TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = read_record(tmp_path / "run.h5")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    assert "spikes" not in rec["ranks"]["0"]
    assert rec["summary"]["attrs"]["n_spikes"] > 0  # the counter, simulation phase only
    assert list(tmp_path.glob("spikescale-brian2-*")) == []  # the build directory is removed


# --- the workflow: NEST and Brian2 in one campaign ----------------------------------------

@pytest.mark.needs_nest
@pytest.mark.needs_brian2
@pytest.mark.workflow
@pytest.mark.slow
def test_campaign_with_nest_and_brian2(nest_python, brian2_python, config_dir, tmp_path):
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest", "brian2"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [2]})
    results = tmp_path / "results"
    snakemake(config_dir, results, timeout=900)
    runs = pd.read_csv(results / "tiny" / "runs.csv").set_index("backend")
    assert sorted(runs.index) == ["brian2", "nest"] and (runs["status"] == "ok").all()
    n_syn = derived.derive(TINY_MODEL["n_scaling"], TINY_MODEL["k_scaling"], "poisson").n_synapses
    assert (runs["n_synapses"] == n_syn).all()
    assert runs.loc["brian2", "t_compile_s"] > 0 and np.isnan(runs.loc["nest", "t_compile_s"])
    assert runs.loc["brian2", "brian2_version"] == "2.9.0"
    table = pd.read_csv(results / "tiny" / "analysis" / "strong_scaling.csv")
    assert sorted(table["backend"]) == ["brian2", "nest"]
    assert (results / "tiny" / "analysis" / "strong_scaling.png").stat().st_size > 10_000


# --- Brian2's conventions against NEST's, on one neuron driving another -------------------

NEST_PAIR = """
import json, nest, numpy as np
from spikescale.models.pd14 import params as P
n = P.NEURON
nest.set_verbosity("M_ERROR"); nest.resolution = 0.1
p = dict(C_m=n["C_m_pF"], tau_m=n["tau_m_ms"], tau_syn_ex=n["tau_syn_ms"], tau_syn_in=n["tau_syn_ms"],
         E_L=n["E_L_mV"], V_th=n["V_th_mV"], V_reset=n["V_reset_mV"], t_ref=n["t_ref_ms"], V_m=n["E_L_mV"])
a = nest.Create("iaf_psc_exp", params={**p, "I_e": 600.0}); b = nest.Create("iaf_psc_exp", params=p)
nest.Connect(a, b, syn_spec={"weight": 500.0, "delay": 1.5})
sr = nest.Create("spike_recorder"); nest.Connect(a, sr)
mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 0.1}); nest.Connect(mm, b)
nest.Simulate(40.0)
ev = mm.get("events")
print(json.dumps({"spikes": list(map(float, sr.get("events")["times"])),
                  "v": {f"{t:.1f}": float(v) for t, v in zip(ev["times"], ev["V_m"])}}))
"""

BRIAN2_PAIR = """
import json, numpy as np
import brian2 as b2
from spikescale.models.pd14 import brian2_builder as B
b2.prefs.codegen.target = "numpy"
b2.defaultclock.dt = 0.1 * b2.ms
g = b2.NeuronGroup(2, B.EQUATIONS, threshold="V > V_th", reset="V = V_reset", method="exact",
                   refractory=B.refractory_ms(0.1) * b2.ms, namespace=B.namespace(b2))
g.V = B.P.NEURON["E_L_mV"] * b2.mV; g.I_e = [600, 0] * b2.pA
s = b2.Synapses(g, g, "w : amp (constant)", on_pre="I_syn_post += w"); s.connect(i=0, j=1)
s.w = 500 * b2.pA; s.delay = 1.5 * b2.ms
sm = b2.SpikeMonitor(g); st = b2.StateMonitor(g, "V", record=1)
b2.run(40 * b2.ms)
h = B.Brian2Network(neurons=g, offsets=np.array([0, 1]), spike_monitor=sm)
class Net: num_neurons = np.array([1, 1])
(senders, times), _ = B.spikes_by_population(h, Net, 0.1)
print(json.dumps({"spikes": list(map(float, times)),
                  "v": {f"{t:.1f}": float(v) for t, v in zip(st.t / b2.ms, st.V[0] / b2.mV)}}))
"""


@pytest.mark.needs_nest
@pytest.mark.needs_brian2
def test_brian2_conventions_give_nests_spikes_and_potentials(nest_python, brian2_python):
    """A neuron driven by a DC current spikes and, 1.5 ms later, moves another: with the
    builder's equations, refractory period and spike-time convention, Brian2 gives NEST's
    spike times and NEST's membrane potential of the second neuron."""
    env = dict(os.environ)
    out = {}
    for name, python, code in (("nest", nest_python, NEST_PAIR), ("brian2", brian2_python, BRIAN2_PAIR)):
        proc = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["nest"]["spikes"]) == 3
    assert out["brian2"]["spikes"] == pytest.approx(out["nest"]["spikes"], abs=1e-9)
    common = sorted(set(out["nest"]["v"]) & set(out["brian2"]["v"]))
    assert len(common) > 350
    assert [out["brian2"]["v"][t] for t in common] == pytest.approx([out["nest"]["v"][t] for t in common], abs=1e-9)
