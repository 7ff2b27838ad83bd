"""PD14 on GeNN 5 (PyGeNN): build the network described by ``spikescale.models.pd14.derived.Network``.

The same model as ``nest_builder`` from the same parameters (``params`` and ``derive()``),
written as GeNN models (the caller hands in the ``pygenn`` module, so this module imports no
simulator):

- iaf_psc_exp as NEST integrates it: a custom neuron model stepping V and the synaptic current
  with NEST's exact propagators (P22, P21, P20, P11, computed here in double precision), V
  clamped for t_ref / dt steps after a spike, threshold ``V >= V_th``. Spikes arriving in a
  step are added to the current after V's update, as NEST's ring buffer does: the synapses
  use GeNN's ``DeltaCurr`` postsynaptic model, so ``Isyn`` is the sum of the weights arriving
  in the step. NEST's two currents (same tau_syn) are one here: V is linear in them.
- Per-synapse delays through GeNN's dendritic delays (``StaticPulseDendriticDelay``: weight
  ``g``, delay ``d`` in steps). GeNN delivers a spike of step n with d = 0 in step n + 1; a NEST
  delay of D steps is therefore d = D - 1 (checked against NEST spike by spike,
  tests/test_genn.py).
- Connectivity ``host`` (default): drawn with numpy by ``connectivity`` exactly as for Brian2 and
  sPyNNaker (the same seed gives the same network as the brian2 backend), one SPARSE synapse
  population per [target, source] pair. ``device`` (the procedural setting, CUDA): GeNN draws
  the same distributions itself (fixed total number with replacement; weights and delays with
  NEST's redraw rules, below), SPARSE or PROCEDURAL.
- Poisson drive: a current source drawing a Poisson count (Knuth's method, exact) per neuron
  and step with mean K_ext x 8 Hz x dt, each count adding the external PSC: what NEST's
  poisson_generator sends. DC drive and the K-scaling DC term: I_e of the neuron.
- Thalamic input: 902 neurons spiking with probability 120 Hz x dt per step in [700, 710) ms.
- Each neuron counts its spikes (``SpikeCount``), for performance runs that record nothing.

Model time: GeNN stamps a spike with its step's start, NEST with its end: spike records add dt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikescale.models.pd14 import params as P
from spikescale.models.pd14.connectivity import (
    draw_projection,
    draw_thalamic,
    initial_potentials_mV,
    population_offsets,
)
from spikescale.models.pd14.derived import Network

CONNECTIVITY = ("host", "device")
THREADS_PER_SPIKE = 8  # procedural connectivity on CUDA: threads per presynaptic spike (GeNN's example)
# device-drawn delays are redrawn beyond this many sd above the mean: the buffer of dendritic
# delays needs a fixed length, and the normal tail there has probability ~1e-88 (never drawn)
DELAY_TAIL_SD = 20.0
MAX_DELAY_STEPS = 255  # d is uint8_t in StaticPulseDendriticDelay


def propagators(dt_ms: float) -> dict:
    """NEST's iaf_psc_exp propagators for one step (double precision): V relative to E_L goes
    to P22 V + P21 I + P20 I_e, I to P11 I."""
    n = P.NEURON
    tau_m, tau_s, c_m = n["tau_m_ms"], n["tau_syn_ms"], n["C_m_pF"]
    p22 = np.exp(-dt_ms / tau_m)
    p11 = np.exp(-dt_ms / tau_s)
    # the current's contribution to V over a step: (1/C) integral of e^{-(h-s)/tau_m} e^{-s/tau_s}
    p21 = (np.exp(-dt_ms / tau_s) - np.exp(-dt_ms / tau_m)) / (c_m * (1.0 / tau_m - 1.0 / tau_s))
    p20 = tau_m / c_m * (1.0 - p22)
    return {"P22": float(p22), "P21": float(p21), "P20": float(p20), "P11": float(p11)}


def refractory_steps(dt_ms: float) -> int:
    """t_ref in steps, as NEST counts them (RefractoryCounts)."""
    return round(P.NEURON["t_ref_ms"] / dt_ms)


def delay_steps_genn(delays_ms: np.ndarray, dt_ms: float) -> np.ndarray:
    """GeNN's dendritic delay d of NEST delays on the grid: D steps -> D - 1."""
    steps = np.rint(np.asarray(delays_ms) / dt_ms).astype(np.int64)
    if steps.min(initial=1) < 1:
        raise ValueError("delays below one step (NEST's minimum) cannot be built")
    if steps.max(initial=1) - 1 > MAX_DELAY_STEPS:
        raise ValueError(f"a delay of {steps.max()} steps exceeds GeNN's uint8 dendritic delay ({MAX_DELAY_STEPS} + 1)")
    return (steps - 1).astype(np.uint8)


def models(genn) -> dict:
    """The custom GeNN models (neuron, Poisson drive, thalamic source, device-side draws)."""
    neuron = genn.create_neuron_model(
        "pd14_iaf_psc_exp",
        params=["E_L", "V_th", "V_reset", "I_e", "P22", "P21", "P20", "P11", ("ref_steps", "int")],
        vars=[("V", "scalar"), ("I", "scalar"), ("RefracSteps", "int"), ("SpikeCount", "unsigned int")],
        # NEST's order: V from the state at the step's start (clamped while refractory), then the
        # current decays and takes the spikes arriving in this step (Isyn)
        sim_code="""
        if (RefracSteps > 0) {
            RefracSteps -= 1;
        }
        else {
            V = E_L + (V - E_L) * P22 + I * P21 + I_e * P20;
        }
        I = I * P11 + Isyn;
        """,
        threshold_condition_code="V >= V_th",
        reset_code="""
        V = V_reset;
        RefracSteps = ref_steps;
        SpikeCount += 1;
        """)
    poisson = genn.create_current_source_model(
        "pd14_poisson_count",
        params=["weight", "exp_minus_lambda"],
        # Knuth: the number of uniforms whose product stays above e^-lambda is Poisson(lambda) + 1
        injection_code="""
        scalar p = 1.0;
        unsigned int count = 0;
        do {
            count++;
            p *= gennrand_uniform();
        } while (p > exp_minus_lambda);
        injectCurrent(weight * (scalar)(count - 1));
        """)
    thalamic = genn.create_neuron_model(
        "pd14_thalamic_poisson",
        params=["p_spike", "start_ms", "stop_ms"],
        threshold_condition_code="t >= start_ms && t < stop_ms && gennrand_uniform() < p_spike")
    weight = genn.create_var_init_snippet(
        "pd14_normal_same_sign",
        params=["mean", "sd"],
        # NEST's redraw: a draw of the wrong sign is drawn again
        var_init_code="""
        scalar w;
        do {
            w = mean + sd * gennrand_normal();
        } while (w * mean < 0.0);
        value = w;
        """)
    delay = genn.create_var_init_snippet(
        "pd14_delay_steps",
        params=["mean_steps", "sd_steps", "max_steps"],
        # NEST's redraw below half a step, its rounding (nearest step, halves up), GeNN's d = D - 1
        var_init_code="""
        scalar x;
        do {
            x = mean_steps + sd_steps * gennrand_normal();
        } while (x < 0.5 || x > max_steps);
        value = (unsigned int)floor(x + 0.5) - 1;
        """)
    return {"neuron": neuron, "poisson": poisson, "thalamic": thalamic, "weight": weight, "delay": delay}


@dataclass
class GeNNNetwork:
    """Handles to what the builder created, by population name."""

    model: object
    models: dict
    populations: dict = field(default_factory=dict)  # name -> neuron group (P.POPULATIONS order)
    synapses: dict = field(default_factory=dict)  # (target, source) -> synapse group
    thalamic: dict = field(default_factory=dict)  # target -> synapse group from the thalamus
    n_recurrent: int = 0  # recurrent synapses
    max_delay_steps: int = 1  # GeNN's dendritic delay buffer length, the same for every group


def create(genn, model, net: Network, rng, *, dt_ms: float, record_spikes: bool) -> GeNNNetwork:
    """Neuron populations with their initial state, drive and (validation runs) spike
    recording. rng draws the initial potentials first, as the Brian2 builder does."""
    m = models(genn)
    h = GeNNNetwork(model=model, models=m)
    v0 = initial_potentials_mV(rng, net)
    offsets = population_offsets(net)
    nrn, prop = P.NEURON, propagators(dt_ms)
    for p, name in enumerate(P.POPULATIONS):
        n = int(net.num_neurons[p])
        params = {"E_L": nrn["E_L_mV"], "V_th": nrn["V_th_mV"], "V_reset": nrn["V_reset_mV"],
                  "I_e": float(net.dc_amp_pA[p]), **prop, "ref_steps": refractory_steps(dt_ms)}
        state = {"V": v0[offsets[p]:offsets[p] + n], "I": 0.0, "RefracSteps": 0, "SpikeCount": 0}
        pop = model.add_neuron_population(name, n, m["neuron"], params, state)
        pop.spike_recording_enabled = bool(record_spikes)
        h.populations[name] = pop
        if net.drive == "poisson":
            lam = float(net.poisson_rate_hz[p]) * dt_ms * 1e-3
            model.add_current_source(f"{name}_poisson", m["poisson"], pop,
                                     {"weight": float(net.weight_ext_pA), "exp_minus_lambda": float(np.exp(-lam))})
    if net.thalamic_input:
        th = P.THALAMUS
        h.populations["TH"] = model.add_neuron_population(
            "TH", th["num_neurons"], m["thalamic"],
            {"p_spike": th["rate_hz"] * dt_ms * 1e-3, "start_ms": th["start_ms"],
             "stop_ms": th["start_ms"] + th["duration_ms"]}, {})
    return h


def _add(genn, model, name: str, source, target, matrix: str, weights, delays, connectivity=None):
    syn = model.add_synapse_population(
        name, matrix, source, target,
        genn.init_weight_update("StaticPulseDendriticDelay", {}, {"g": weights, "d": delays}),
        genn.init_postsynaptic("DeltaCurr"),
        connectivity)  # None: set by the caller (set_sparse_connections)
    return syn


def connect(genn, net: Network, h: GeNNNetwork, rng, *, dt_ms: float, connectivity: str = "host",
            procedural: bool = False) -> None:
    """Recurrent and thalamic synapses, one synapse population per [target, source] pair.
    ``host``: drawn in numpy (pairs in [target, source] order, as connectivity.draw_recurrent
    draws them); ``device``: GeNN draws them at load time (``procedural``: again at every
    spike, never stored)."""
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity {connectivity!r}; known: {', '.join(CONNECTIVITY)}")
    if procedural and connectivity != "device":
        raise ValueError("procedural connectivity is drawn by GeNN: it needs connectivity 'device'")
    model, pops = h.model, h.populations
    n_pops = len(P.POPULATIONS)
    for i in range(n_pops):
        for j in range(n_pops):
            n = int(net.num_synapses[i, j])
            if n == 0:
                continue
            src, tgt = P.POPULATIONS[j], P.POPULATIONS[i]
            name = f"{src}_to_{tgt}"
            if connectivity == "host":
                s, t, w, d = draw_projection(rng, net, i, j, dt_ms)
                steps = delay_steps_genn(d, dt_ms)
                syn = _add(genn, model, name, pops[src], pops[tgt], "SPARSE", w, steps)
                syn.set_sparse_connections(s, t)
                h.max_delay_steps = max(h.max_delay_steps, int(steps.max()) + 1)
            else:
                syn = _device_projection(genn, model, h, name, pops[src], pops[tgt], n,
                                         float(net.weight_mean_pA[i, j]), float(net.delay_mean_ms[i, j]),
                                         P.DELAY_REL_STD, dt_ms, procedural)
            h.synapses[(tgt, src)] = syn
            h.n_recurrent += n
    if net.thalamic_input:
        _connect_thalamus(genn, net, h, rng, dt_ms=dt_ms, connectivity=connectivity, procedural=procedural)
    for syn in [*h.synapses.values(), *h.thalamic.values()]:
        # one buffer length for all: GeNN fuses the postsynaptic inputs of a target population
        syn.max_dendritic_delay_timesteps = h.max_delay_steps


def _device_projection(genn, model, h: GeNNNetwork, name, source, target, n: int, weight_mean_pA: float,
                       delay_mean_ms: float, delay_rel_std: float, dt_ms: float, procedural: bool):
    mean_steps, sd_steps = delay_mean_ms / dt_ms, abs(delay_mean_ms * delay_rel_std) / dt_ms
    max_steps = min(float(MAX_DELAY_STEPS), mean_steps + DELAY_TAIL_SD * sd_steps)
    h.max_delay_steps = max(h.max_delay_steps, int(np.floor(max_steps + 0.5)))
    weights = genn.init_var(h.models["weight"], {"mean": weight_mean_pA,
                                                 "sd": abs(weight_mean_pA) * P.WEIGHT_REL_STD})
    delays = genn.init_var(h.models["delay"], {"mean_steps": mean_steps, "sd_steps": sd_steps, "max_steps": max_steps})
    syn = _add(genn, model, name, source, target, "PROCEDURAL" if procedural else "SPARSE", weights, delays,
               genn.init_sparse_connectivity("FixedNumberTotalWithReplacement", {"num": n}))
    if procedural:
        syn.num_threads_per_spike = THREADS_PER_SPIKE
    return syn


def _connect_thalamus(genn, net: Network, h: GeNNNetwork, rng, *, dt_ms: float, connectivity: str,
                      procedural: bool) -> None:
    th, model, pops = P.THALAMUS, h.model, h.populations
    if connectivity == "host":
        s, t, w, d = draw_thalamic(rng, net, dt_ms)
        offsets = population_offsets(net)
        for i, tgt in enumerate(P.POPULATIONS):
            sel = (t >= offsets[i]) & (t < offsets[i] + int(net.num_neurons[i]))
            if not sel.any():
                continue
            steps = delay_steps_genn(d[sel], dt_ms)
            syn = _add(genn, model, f"TH_to_{tgt}", pops["TH"], pops[tgt], "SPARSE", w[sel], steps)
            syn.set_sparse_connections(s[sel], t[sel] - offsets[i])
            h.max_delay_steps = max(h.max_delay_steps, int(steps.max()) + 1)
            h.thalamic[tgt] = syn
        return
    for i, tgt in enumerate(P.POPULATIONS):
        n = int(net.num_th_synapses[i])
        if n:
            h.thalamic[tgt] = _device_projection(genn, model, h, f"TH_to_{tgt}", pops["TH"], pops[tgt], n,
                                                 float(net.weight_th_pA), th["delay_mean_ms"], th["delay_rel_std"],
                                                 dt_ms, procedural)


def spike_counts(h: GeNNNetwork) -> int:
    """Spikes of the 8 populations so far (each neuron's SpikeCount, pulled from the device)."""
    total = 0
    for name in P.POPULATIONS:
        var = h.populations[name].vars["SpikeCount"]
        var.pull_from_device()
        total += int(np.asarray(var.values, dtype=np.int64).sum())
    return total


def recorded_spikes(h: GeNNNetwork, dt_ms: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(neuron index within the population, NEST time in ms) per population from GeNN's
    recording buffers (pulled by the caller). GeNN's time is its step's start: + dt."""
    out = []
    for name in P.POPULATIONS:
        times, ids = h.populations[name].spike_recording_data[0]
        steps = np.rint(np.asarray(times, dtype=np.float64) / dt_ms).astype(np.int64)
        out.append((np.asarray(ids, dtype=np.int64), (steps + 1) * dt_ms))
    return out
