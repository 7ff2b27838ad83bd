"""PD14 on Brian2: build the network described by ``spikescale.models.pd14.derived.Network``.

The same model as ``nest_builder`` from the same parameters (``params`` and ``derive()``),
written for Brian2's standalone devices (cpp_standalone, and GeNN through brian2genn):

- iaf_psc_exp: a linear membrane driven by an exponentially decaying synaptic current,
  integrated exactly (``method='exact'``: the propagator matrix, as NEST does), V clamped at
  V_reset for t_ref after a spike. NEST keeps two currents (excitatory, inhibitory) with
  the same time constant; being linear, their sum is one current here, with the same V.
- Connectivity drawn with numpy by ``spikescale.models.pd14.connectivity`` (fixed total number with
  replacement, normal weights and delays redrawn as NEST's builder does).
- Drive: Poisson (a Poisson-distributed number of background spikes per neuron and step,
  rate K_ext x 8 Hz, each adding the external PSC: what NEST's poisson_generator sends) or
  DC (a constant current I_e); the K-scaling DC term is I_e as well.
- Optional thalamic input: a PoissonGroup of 902 sources, active for 10 ms from 700 ms.

Everything random is drawn from one seed: numpy's generator for the network, Brian2's
``seed()`` for what happens at run time. Brian2 and NEST draw different numbers from the
same seed; the ensembles, not single runs, are comparable. See docs/brian2.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikescale.models.pd14 import params as P
from spikescale.models.pd14.connectivity import (draw_recurrent, draw_thalamic, initial_potentials_mV,  # noqa: F401 - used by tests
                                      population_offsets)
from spikescale.models.pd14.derived import Network

# iaf_psc_exp; I_e is the DC input (drive and K-scaling compensation), rate_ext the total
# Poisson background rate (0 with DC drive), both per neuron.
EQUATIONS = """
dV/dt = (E_L - V) / tau_m + (I_syn + I_e) / C_m : volt (unless refractory)
dI_syn/dt = -I_syn / tau_syn : amp
I_e : amp (constant)
rate_ext : Hz (constant)
pop_index : integer (constant)
"""


@dataclass
class Brian2Network:
    """Handles to what the builder created. Neuron k of population p is neuron
    ``offsets[p] + k`` of the one NeuronGroup."""

    neurons: object
    offsets: np.ndarray
    objects: list = field(default_factory=list)  # everything to add to the Network
    recurrent: list = field(default_factory=list)  # Synapses objects of the recurrent connections
    spike_monitor: object = None  # records every spike (validation runs)
    spike_counter: object = None  # counts spikes of the simulation phase only (performance runs)
    n_recurrent: int = 0  # recurrent synapses drawn


def namespace(b2) -> dict:
    """The neuron parameters, with units, for Brian2's equations."""
    u, nrn = b2.units, P.NEURON
    return {"E_L": nrn["E_L_mV"] * u.mV, "V_th": nrn["V_th_mV"] * u.mV, "V_reset": nrn["V_reset_mV"] * u.mV,
            "tau_m": nrn["tau_m_ms"] * u.ms, "tau_syn": nrn["tau_syn_ms"] * u.ms, "C_m": nrn["C_m_pF"] * u.pF}


def refractory_ms(dt_ms: float) -> float:
    """Brian2's refractory period that clamps V for as many steps as NEST's t_ref does.
    Brian2 integrates the step in which V crosses the threshold before it resets, and counts
    the refractory time from that step's start; NEST counts t_ref steps after it. With t_ref
    alone Brian2 resumes integrating one step early (ISI one step shorter, measured)."""
    return P.NEURON["t_ref_ms"] + dt_ms


def create(b2, net: Network, rng, *, dt_ms: float, record_spikes: bool, poisson_input: bool = False) -> Brian2Network:
    """Neurons, initial state, drive, thalamus and spike monitors (not yet connected).
    Performance runs get a spike counter (a SpikeMonitor that records nothing).

    ``poisson_input`` (brian2genn, whose run_regularly runs on the host): the background as
    one Brian2 PoissonInput per population, K_ext sources at 8 Hz, i.e. a binomial count
    per neuron and step instead of a Poisson one (same mean, variance smaller by a factor
    1 - 8 Hz x dt = 0.9992). Each PoissonInput draws for every neuron, weighted 0 outside
    its population: GeNN keeps one neuron group, and one group per population would
    multiply the synapse groups by 8."""
    u = b2.units
    n_total = int(net.num_neurons.sum())
    neurons = b2.NeuronGroup(n_total, EQUATIONS, threshold="V > V_th", reset="V = V_reset",
                             refractory=refractory_ms(dt_ms) * u.ms, method="exact", namespace=namespace(b2),
                             name="pd14_neurons")
    neurons.V = initial_potentials_mV(rng, net) * u.mV
    neurons.I_syn = 0 * u.pA
    neurons.I_e = np.repeat(net.dc_amp_pA, net.num_neurons) * u.pA
    neurons.rate_ext = np.repeat(net.poisson_rate_hz, net.num_neurons) * u.Hz
    neurons.pop_index = np.repeat(np.arange(len(P.POPULATIONS)), net.num_neurons)
    h = Brian2Network(neurons=neurons, offsets=population_offsets(net), objects=[neurons])

    if net.drive == "poisson" and poisson_input:
        for p in range(len(P.POPULATIONS)):
            drive = b2.PoissonInput(neurons, "I_syn", N=int(net.ext_indegree[p]), rate=P.BG_RATE_HZ * u.Hz,
                                    weight=f"{net.weight_ext_pA!r} * pA * int(pop_index == {p})")
            h.objects.append(drive)
    elif net.drive == "poisson":
        # A Poisson number of background spikes per neuron and step, each adding the
        # external PSC: what NEST's poisson_generator sends to each of its targets.
        drive = neurons.run_regularly("I_syn += w_ext * poisson(rate_ext * dt)", when="synapses",
                                      name="pd14_poisson_drive")
        neurons.namespace["w_ext"] = net.weight_ext_pA * u.pA
        h.objects.append(drive)

    if record_spikes:
        h.spike_monitor = b2.SpikeMonitor(neurons, name="pd14_spikes")
        h.objects.append(h.spike_monitor)
    else:
        h.spike_counter = b2.SpikeMonitor(neurons, record=False, name="pd14_spike_counter")
        h.objects.append(h.spike_counter)
    return h


def _synapses(b2, source, target, sources, targets, weights_pA, delays_ms, name: str, dt_ms: float,
               delay_classes: bool) -> list:
    """One Synapses object with a delay per synapse, or (delay_classes) one per delay on
    the grid, each with that delay for all its synapses (brian2genn: GeNN takes one delay
    per synapse population)."""
    u = b2.units
    if not delay_classes:
        syn = b2.Synapses(source, target, model="w : amp (constant)", on_pre="I_syn_post += w", name=name)
        syn.connect(i=sources, j=targets)
        syn.w = weights_pA * u.pA
        syn.delay = delays_ms * u.ms
        return [syn]
    steps = np.rint(delays_ms / dt_ms).astype(np.int64)
    out = []
    for k in np.unique(steps):
        sel = steps == k
        syn = b2.Synapses(source, target, model="w : amp (constant)", on_pre="I_syn_post += w",
                          delay=float(k * dt_ms) * u.ms, name=f"{name}_d{k}")
        syn.connect(i=sources[sel], j=targets[sel])
        syn.w = weights_pA[sel] * u.pA
        out.append(syn)
    return out


def connect(b2, net: Network, h: Brian2Network, rng, *, dt_ms: float, delay_classes: bool = False) -> None:
    """Recurrent synapses and the thalamic input. Brian2's own devices take a delay per
    synapse (one Synapses object); with ``delay_classes`` every delay on the grid gets a
    Synapses object of its own (GeNN through brian2genn)."""
    u = b2.units
    sources, targets, weights, delays = draw_recurrent(rng, net, dt_ms)
    h.recurrent = _synapses(b2, h.neurons, h.neurons, sources, targets, weights, delays, "pd14_recurrent", dt_ms,
                            delay_classes)
    h.objects += h.recurrent
    h.n_recurrent = int(len(sources))
    del sources, targets, weights, delays

    if net.thalamic_input:
        th = P.THALAMUS
        start, stop = th["start_ms"] * u.ms, (th["start_ms"] + th["duration_ms"]) * u.ms
        thalamus = b2.PoissonGroup(th["num_neurons"], rates="th_rate * int(t >= th_start and t < th_stop)",
                                   namespace={"th_rate": th["rate_hz"] * u.Hz, "th_start": start, "th_stop": stop},
                                   name="pd14_thalamus")
        s, t, w, d = draw_thalamic(rng, net, dt_ms)
        h.objects += [thalamus, *_synapses(b2, thalamus, h.neurons, s, t, w, d, "pd14_thalamic", dt_ms,
                                           delay_classes)]


def spikes_by_population(h: Brian2Network, net: Network, dt_ms: float, first_id: int = 1):
    """(senders, times_ms) per population from the spike monitor, in NEST's conventions.
    Senders are numbered like NEST's node ids: population p starts at ``first_id +
    offsets[p]``. Times are those NEST gives the same spike: Brian2 stamps a spike with the
    start of the step in which V crossed the threshold, NEST with its end, so dt is added."""
    i = np.asarray(h.spike_monitor.i[:], dtype=np.int64)
    # from the step number, so that a spike of the last presimulation step is stamped with
    # exactly t_presim (NEST's time), not a rounding error above it
    steps = np.rint(np.asarray(h.spike_monitor.t_[:], dtype=np.float64) * 1e3 / dt_ms).astype(np.int64)
    t_ms = (steps + 1) * dt_ms
    out = []
    for p, offset in enumerate(h.offsets):
        sel = (i >= offset) & (i < offset + int(net.num_neurons[p]))
        out.append((i[sel] + first_id, t_ms[sel]))
    return out
