"""The genn backend (GeNN 5 through PyGeNN, .venvs/genn from `make genn`): the builder's
conventions give NEST's spikes and potentials on two neurons, GeNN's own draws of delays and
weights follow the model, a small run through the harness writes a complete record with every
phase timed, DC drive and the thalamic pulse run, and a run is valid against a NEST reference
ensemble of the same small model."""

import json
import os
import subprocess

import numpy as np
import pytest
from scipy import stats

from helpers import REPO, run_harness, run_spec
from spikescale import columns
from spikescale.backends import capabilities
from spikescale.backends.genn import settings_of
from spikescale.models.pd14 import derived
from spikescale.models.pd14 import genn_builder as G
from spikescale.models.pd14 import params as P
from spikescale.record import read_record

CONTEXT = {"software": {"versions": {"pygenn": "5.4.0"}}}


@pytest.fixture(scope="session")
def genn_python():
    """.venvs/genn's interpreter, with PyGeNN; its tests are marked needs_genn (conftest)."""
    return REPO / ".venvs" / "genn" / "bin" / "python"


# --- what needs no GeNN -------------------------------------------------------------------

def test_nest_delays_become_genns_dendritic_delays_one_step_shorter():
    """GeNN delivers a spike of step n with d = 0 in step n + 1: NEST's D steps are d = D - 1."""
    assert list(G.delay_steps_genn(np.array([0.1, 0.2, 1.5, 25.6]), 0.1)) == [0, 1, 14, 255]
    with pytest.raises(ValueError, match="below one step"):
        G.delay_steps_genn(np.array([0.04]), 0.1)
    with pytest.raises(ValueError, match="uint8"):
        G.delay_steps_genn(np.array([25.8]), 0.1)


def test_propagators_are_the_exact_solution_of_iaf_psc_exp():
    """P21 and P20 against a fine Euler integration of one step of the membrane."""
    nrn, dt = P.NEURON, 0.1
    p = G.propagators(dt)
    h = dt / 100_000
    v, i_syn, v_dc = 0.0, 1.0, 0.0
    for _ in range(100_000):
        v += h * (-v / nrn["tau_m_ms"] + i_syn / nrn["C_m_pF"])
        v_dc += h * (-v_dc / nrn["tau_m_ms"] + 1.0 / nrn["C_m_pF"])
        i_syn -= h * i_syn / nrn["tau_syn_ms"]
    assert p["P21"] == pytest.approx(v, rel=1e-4) and p["P20"] == pytest.approx(v_dc, rel=1e-4)
    assert p["P11"] == pytest.approx(i_syn, rel=1e-4) and G.refractory_steps(dt) == 20


def test_settings_have_the_schemas_defaults_and_one_process():
    assert settings_of({}) == {"backend": "auto", "precision": "double", "connectivity": "host",
                               "procedural_connectivity": False, "optimize_code": True}
    assert settings_of({"software": {"pygenn": {"backend": "cuda"}}})["backend"] == "cuda"
    caps = capabilities("genn")
    assert caps.build_phases and not caps.mpi and "one process" in caps.one_process_why


# --- GeNN's conventions against NEST's, on one neuron driving another -------------------

GENN_PAIR = """
import json, tempfile, numpy as np, pygenn
from spikescale.models.pd14 import genn_builder as G
from spikescale.models.pd14 import params as P
n, dt = P.NEURON, 0.1
model = pygenn.GeNNModel("double", "pair", backend="single_threaded_cpu", optimize_code=True)
model.dt = dt
m = G.models(pygenn)
base = {"E_L": n["E_L_mV"], "V_th": n["V_th_mV"], "V_reset": n["V_reset_mV"], **G.propagators(dt),
        "ref_steps": G.refractory_steps(dt)}
state = {"V": n["E_L_mV"], "I": 0.0, "RefracSteps": 0, "SpikeCount": 0}
a = model.add_neuron_population("a", 1, m["neuron"], {**base, "I_e": 600.0}, state)
b = model.add_neuron_population("b", 1, m["neuron"], {**base, "I_e": 0.0}, state)
a.spike_recording_enabled = True
d = G.delay_steps_genn(np.array([1.5]), dt)
syn = model.add_synapse_population("ab", "SPARSE", a, b,
    pygenn.init_weight_update("StaticPulseDendriticDelay", {}, {"g": np.array([500.0]), "d": d}),
    pygenn.init_postsynaptic("DeltaCurr"))
syn.set_sparse_connections(np.array([0]), np.array([0]))
syn.max_dendritic_delay_timesteps = int(d[0]) + 1
model.build(path_to_model=tempfile.mkdtemp()); model.load(num_recording_timesteps=400)
v = {}
for step in range(400):
    model.step_time()
    b.vars["V"].pull_from_device()
    v[f"{(step + 1) * dt:.1f}"] = float(b.vars["V"].values[0])
model.pull_recording_buffers_from_device()
times, _ = a.spike_recording_data[0]
print(json.dumps({"spikes": [float((round(t / dt) + 1) * dt) for t in times], "v": v}))
"""


@pytest.mark.needs_nest
@pytest.mark.needs_genn
def test_genn_conventions_give_nests_spikes_and_potentials(nest_python, genn_python):
    """A neuron driven by a DC current spikes and, 1.5 ms later, moves another: with the
    builder's neuron model (NEST's propagators, refractory count, threshold), GeNN's dendritic
    delay d = D - 1 and the spike-time convention, GeNN gives NEST's spike times and NEST's
    membrane potential of the second neuron (double precision)."""
    from test_brian2 import NEST_PAIR

    out = {}
    for name, python, code in (("nest", nest_python, NEST_PAIR), ("genn", genn_python, GENN_PAIR)):
        proc = subprocess.run([str(python), "-c", code], cwd="/tmp", capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["nest"]["spikes"]) == 3
    assert out["genn"]["spikes"] == pytest.approx(out["nest"]["spikes"], abs=1e-9)
    common = sorted(set(out["nest"]["v"]) & set(out["genn"]["v"]))
    assert len(common) > 350
    assert [out["genn"]["v"][t] for t in common] == pytest.approx([out["nest"]["v"][t] for t in common], abs=1e-9)


# --- the network GeNN builds: its delays and weights --------------------------------------

GENN_BUILT = """
import json, sys, tempfile, numpy as np, pygenn
from spikescale.models.pd14 import derived, genn_builder as G
connectivity, dt = sys.argv[1], 0.1
net = derived.derive(0.05, 0.05, "poisson")
model = pygenn.GeNNModel("double", "built", backend="single_threaded_cpu", optimize_code=True)
model.dt, model.seed = dt, 5
model.fuse_postsynaptic_models = True
rng = np.random.default_rng(3)
h = G.create(pygenn, model, net, rng, dt_ms=dt, record_spikes=False)
G.connect(pygenn, net, h, rng, dt_ms=dt, connectivity=connectivity)
model.build(path_to_model=tempfile.mkdtemp()); model.load()
out = {}
for (tgt, src), syn in h.synapses.items():
    syn.pull_connectivity_from_device()
    for var in ("g", "d"):
        syn.vars[var].pull_from_device()
    delays_ms = (np.asarray(syn.vars["d"].values, dtype=np.int64) + 1) * dt
    out[f"{tgt}<{src}"] = {"n": int(len(syn.get_sparse_post_inds())), "g": syn.vars["g"].values.tolist(),
                           "delay_ms": delays_ms.tolist()}
print(json.dumps({"max_delay_steps": h.max_delay_steps, "projections": out}))
"""


@pytest.fixture(scope="module", params=["host", "device"])
def built(request, genn_python):
    proc = subprocess.run([str(genn_python), "-c", GENN_BUILT, request.param], cwd="/tmp", capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return request.param, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.needs_genn
def test_built_network_has_the_models_counts_weights_and_delay_distribution(built):
    """Per projection the fixed total number of synapses; weights keep their sign, mean and
    spread; per class (excitatory 1.5 ms, inhibitory 0.75 ms sources) the delays are the
    normal with sd half the mean, redrawn below half a step and rounded to the grid: the
    truncated normal's mean and sd (plus the rounding's dt^2/12), whether numpy drew them
    (host) or GeNN did (device)."""
    connectivity, got = built
    net = derived.derive(0.05, 0.05, "poisson")
    pops = list(P.POPULATIONS)
    delays = {"E": [], "I": []}
    for key, proj in got["projections"].items():
        tgt, src = (pops.index(p) for p in key.split("<"))
        assert proj["n"] == net.num_synapses[tgt, src], key
        w, mean = np.asarray(proj["g"]), net.weight_mean_pA[tgt, src]
        assert np.all(np.sign(w) == np.sign(mean)), key
        if len(w) > 2000:
            assert w.mean() == pytest.approx(mean, rel=0.02) and w.std() == pytest.approx(
                abs(mean) * P.WEIGHT_REL_STD, rel=0.1), key
        delays["E" if src % 2 == 0 else "I"].append(np.asarray(proj["delay_ms"]))
    assert len(got["projections"]) == int(np.count_nonzero(net.num_synapses))
    for cls, mean in (("E", P.DELAY_EXC_MEAN_MS), ("I", P.DELAY_INH_MEAN_MS)):
        d = np.concatenate(delays[cls])
        steps = d / 0.1
        assert np.allclose(steps, np.round(steps)) and steps.min() >= 1
        sd = mean * P.DELAY_REL_STD
        truncated = stats.truncnorm((0.05 - mean) / sd, np.inf, loc=mean, scale=sd)
        assert d.mean() == pytest.approx(truncated.mean(), rel=0.01), (connectivity, cls)
        assert d.std() == pytest.approx(np.sqrt(truncated.var() + 0.1**2 / 12), rel=0.03), (connectivity, cls)
    assert got["max_delay_steps"] > max(np.concatenate(delays["E"])) / 0.1 - 1


# --- runs through the harness -----------------------------------------------------------

def _harness(genn_python, spec, out, context=CONTEXT, **env):
    cmd = [str(genn_python), "-m", "spikescale.harness", "--spec", json.dumps(spec), "--context",
           json.dumps(context), "--out", str(out)]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def recorded(genn_python, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    spec = run_spec(backend="genn", record_spikes=True)
    proc = _harness(genn_python, spec, tmp / "run.h5", TMPDIR=str(tmp))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return spec, read_record(tmp / "run.h5"), tmp


@pytest.mark.needs_genn
def test_small_run_has_every_phase_timed_and_genns_timers(recorded):
    spec, rec, tmp = recorded
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    phases = rec["ranks"]["0"]["phases"]
    assert sorted(phases, key=lambda p: phases[p]["attrs"]["order"]) == \
        ["setup", "create", "connect", "compile", "load", "presimulate", "simulate", "collect"]
    assert all(phases[p]["attrs"]["wall_s"] > 0 for p in phases)
    s = rec["summary"]["attrs"]
    assert set(columns.filled_by("genn")) <= set(s), set(columns.filled_by("genn")) - set(s)
    # code generation and compilation is its own phase, never part of the simulation
    assert s["t_compile_s"] > 1 and s["t_sim_s"] < s["t_compile_s"]
    assert s["rtf"] == pytest.approx(s["t_sim_s"] / (spec["t_sim_ms"] / 1000)) and s["platform"] == "cpu"
    timers = rec["ranks"]["0"]["kernel_timers"]
    for phase, column in (("presimulate", "t_presim_s"), ("simulate", "t_sim_s")):
        t = timers[phase]["attrs"]
        # GeNN's own timers of that phase alone: inside its wall time
        assert 0 < t["time_neuron_update_time"] + t["time_presynaptic_update_time"] <= s[column], (phase, t)
    assert timers["construction"]["attrs"]["time_init_time"] > 0
    versions = rec["provenance"]["packages"]["attrs"]
    assert versions["pygenn"] == "5.4.0" and versions["genn_backend"] == "single_threaded_cpu"
    assert list(tmp.glob("spikescale-genn-*")) == []  # the build directory is removed


@pytest.mark.needs_genn
def test_counts_and_spikes_as_nest_lays_them_out(recorded):
    spec, rec, _ = recorded
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    s = rec["summary"]["attrs"]
    assert s["n_neurons"] == net.n_neurons and s["n_synapses"] == net.n_synapses
    rank = rec["ranks"]["0"]
    first = list(rank["population_first_ids"])
    assert first == [1 + int(o) for o in G.population_offsets(net)]
    for p, pop in enumerate(P.POPULATIONS):
        senders, times = rank["spikes"][pop]["senders"], rank["spikes"][pop]["times_ms"]
        assert ((senders >= first[p]) & (senders < first[p] + net.num_neurons[p])).all()
        assert ((times > 0) & (times <= spec["t_presim_ms"] + spec["t_sim_ms"] + 1e-9)).all()
    in_window = [int(np.count_nonzero(rank["spikes"][p]["times_ms"] > spec["t_presim_ms"])) for p in P.POPULATIONS]
    # the neurons' own spike counters agree with the recording
    assert rank["counts"]["attrs"]["n_spikes_sim_counter"] == s["n_spikes"] == sum(in_window) > 0
    assert 0.2 < s["rate_mean_hz"] < 5  # NEST gives about 0.8 spikes/s at this scale


@pytest.mark.needs_genn
@pytest.mark.parametrize("connectivity", ["host", "device"])
def test_dc_drive_and_the_thalamic_pulse_run(genn_python, tmp_path, connectivity):
    """DC drive (I_e) in a performance run that records nothing but counts; the thalamic
    pulse (700 to 710 ms) makes L4E fire in the 20 ms after it more than before it, with the
    synapses drawn in numpy (host) or by GeNN (device)."""
    spec = run_spec(backend="genn", drive="dc", thalamic_input=True, record_spikes=True, t_presim_ms=600.0,
                    t_sim_ms=200.0, n_scaling=0.05, k_scaling=0.05)
    context = {"software": {**CONTEXT["software"], "pygenn": {"connectivity": connectivity}}}
    proc = _harness(genn_python, spec, tmp_path / "run.h5", context, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = read_record(tmp_path / "run.h5")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    times = rec["ranks"]["0"]["spikes"]["L4E"]["times_ms"]
    after = np.count_nonzero((times > 700) & (times <= 720))
    before = np.count_nonzero((times > 660) & (times <= 680))
    assert after > 3 * max(before, 1), (before, after)
    assert rec["provenance"]["packages"]["attrs"]["genn_connectivity"] == connectivity
    net = derived.derive(0.05, 0.05, "dc", thalamic_input=True)
    assert rec["summary"]["attrs"]["n_synapses"] == net.n_synapses

    spec = run_spec(backend="genn", drive="dc", record_spikes=False, t_presim_ms=50.0, t_sim_ms=100.0)
    proc = _harness(genn_python, spec, tmp_path / "dc.h5", TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = read_record(tmp_path / "dc.h5")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    assert "spikes" not in rec["ranks"]["0"] and rec["summary"]["attrs"]["n_spikes"] >= 0
    assert list(tmp_path.glob("spikescale-genn-*")) == []


@pytest.mark.needs_genn
def test_threads_and_procedural_connectivity_are_refused_on_the_cpu_backend(genn_python, tmp_path):
    """Set-up says what the CPU backend cannot do, before anything is built."""
    procedural = {"software": {**CONTEXT["software"], "pygenn": {"backend": "single_threaded_cpu",
                                                                 "connectivity": "device",
                                                                 "procedural_connectivity": True}}}
    for name, spec, context, message in (
            ("threads", run_spec(backend="genn", threads_per_task=2), CONTEXT,
             "single_threaded_cpu backend uses one thread"),
            ("procedural", run_spec(backend="genn"), procedural, "procedural_connectivity needs GeNN's cuda backend")):
        proc = _harness(genn_python, spec, tmp_path / f"{name}.h5", context)
        rec = read_record(tmp_path / f"{name}.h5")
        assert rec["attrs"]["status"] == "failed" and rec["attrs"]["failed_phase"] == "setup", proc.stdout
        assert message in rec["attrs"]["error"], rec["attrs"]["error"]


# --- validation against a NEST reference ensemble of the same small model ----------------

VALIDATION = {"n_scaling": 0.05, "k_scaling": 0.05, "t_presim_ms": 200.0, "t_sim_ms": 1000.0, "record_spikes": True}


@pytest.mark.needs_nest
@pytest.mark.needs_genn
@pytest.mark.slow
def test_genn_runs_are_judged_like_nests_own_against_a_nest_reference(nest_python, genn_python, tmp_path):
    """Five NEST seeds make a reference of the model's own spread at this scale (the fewest
    analysis.validation accepts). Three GeNN seeds and three further NEST seeds are judged
    against it as analysis.validation judges every run. With so small a reference even NEST's
    own runs fall outside it now and then (seen: 2, 4 and 3 of 24 pairs for seeds 1 to 3), so
    GeNN must do as well as NEST: no more pairs outside than NEST's runs plus one per run, and
    most of its runs valid (seen: GeNN 0, 7 and 1). A wrong model fails this: with every
    recurrent weight 10 % too strong (weight_factor 1.1) GeNN had 17 pairs outside, no run valid."""
    from spikescale.analysis import validation as V

    def judged(backend, seed):
        out = tmp_path / f"{backend}-{seed}.h5"
        spec = run_spec(backend=backend, seed=seed, **VALIDATION)
        proc = run_harness(spec, out) if backend == "nest" else _harness(genn_python, spec, out, TMPDIR=str(tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return out

    reference = V.build_reference([judged("nest", seed) for seed in range(1001, 1006)], tmp_path / "reference.h5",
                                  "test")
    assert reference["usable"], reference
    outside, verdicts = {}, {}
    for backend in ("nest", "genn"):
        for seed in (1, 2, 3):
            result = V.check_run(judged(backend, seed), tmp_path / "reference.h5", tmp_path / f"{backend}-{seed}.json")
            outside[backend] = outside.get(backend, 0) + sum(not row["inside"] for row in result["rows"])
            verdicts.setdefault(backend, []).append(result["verdict"])
    assert outside["genn"] <= outside["nest"] + 3, (outside, verdicts)
    assert sum(v.startswith("valid") for v in verdicts["genn"]) >= 2, verdicts
