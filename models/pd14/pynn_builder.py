"""PD14 on PyNN 0.13 for sPyNNaker 7.4: build the network described by
``spikescale.models.pd14.derived.Network``.

The same model as ``nest_builder`` from the same parameters, in PyNN's units (nA, nF, mV,
ms): IF_curr_exp (iaf_psc_exp), one SpikeSourcePoisson per neuron for the background (the
population's rate K_ext x 8 Hz, weight the external PSC, delay 1.5 ms) or DC drive
(``i_offset``, which also carries the K-scaling compensation), optional thalamic input.

Connectivity: PD14's own rule is PyNN's FixedTotalNumberConnector, but sPyNNaker 7.4.1's
fails while writing synapse data whenever the target population spans more than one core
(seen here; docs/spinnaker.md, "The model on SpiNNaker"). The synapses are therefore drawn by
``spikescale.models.pd14.connectivity`` (the same fixed total number with replacement that the Brian2
builder uses) and given as a FromListConnector, one projection per [target, source] pair.
The drawn synapses are kept on the handles: the SpiNNaker emulator simulates exactly the
network that sPyNNaker mapped.

Inhibitory weights are given as magnitudes on the "inhibitory" receptor, as sPyNNaker
stores them (current-based inhibitory input is subtracted on the board).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikescale.models.pd14 import connectivity
from spikescale.models.pd14 import params as P
from spikescale.models.pd14.derived import Network

PA_PER_NA = 1000.0


@dataclass
class Synapses:
    """Synapses as indices of the whole network (populations in order, offsets from
    ``connectivity.population_offsets``); weights signed, in pA; delays on the grid, in ms."""

    sources: np.ndarray
    targets: np.ndarray
    weights_pA: np.ndarray
    delays_ms: np.ndarray

    def __len__(self) -> int:
        return int(len(self.sources))


@dataclass
class PyNNNetwork:
    """Handles to what the builder created, and the drawn network itself."""

    populations: list
    v_init_mV: np.ndarray
    background: list = field(default_factory=list)  # SpikeSourcePoisson per population (Poisson drive)
    thalamus: object = None
    recurrent: Synapses | None = None
    thalamic: Synapses | None = None
    projections: list = field(default_factory=list)


def cell_parameters(net: Network, population: int) -> dict:
    """IF_curr_exp parameters of one population, in PyNN's units."""
    n = P.NEURON
    return {"cm": n["C_m_pF"] / PA_PER_NA, "tau_m": n["tau_m_ms"], "tau_syn_E": n["tau_syn_ms"],
            "tau_syn_I": n["tau_syn_ms"], "v_rest": n["E_L_mV"], "v_reset": n["V_reset_mV"],
            "v_thresh": n["V_th_mV"], "tau_refrac": n["t_ref_ms"],
            "i_offset": float(net.dc_amp_pA[population]) / PA_PER_NA}


def create(sim, net: Network, rng, *, record_spikes: bool, neurons_per_core: int) -> PyNNNetwork:
    """Populations, initial potentials, background and thalamic sources (not yet connected)."""
    sim.set_number_of_neurons_per_core(sim.IF_curr_exp, int(neurons_per_core))
    v_init = connectivity.initial_potentials_mV(rng, net)
    offsets = connectivity.population_offsets(net)
    pops = []
    for p, name in enumerate(P.POPULATIONS):
        n = int(net.num_neurons[p])
        pop = sim.Population(n, sim.IF_curr_exp(**cell_parameters(net, p)), label=name)
        pop.initialize(v=v_init[offsets[p]:offsets[p] + n])
        if record_spikes:
            pop.record("spikes")
        pops.append(pop)
    h = PyNNNetwork(populations=pops, v_init_mV=v_init)
    if net.drive == "poisson":
        h.background = [sim.Population(int(net.num_neurons[p]), sim.SpikeSourcePoisson(rate=float(net.poisson_rate_hz[p])),
                                       label=f"{name}_background") for p, name in enumerate(P.POPULATIONS)]
    if net.thalamic_input:
        th = P.THALAMUS
        h.thalamus = sim.Population(th["num_neurons"], sim.SpikeSourcePoisson(
            rate=th["rate_hz"], start=th["start_ms"], duration=th["duration_ms"]), label="thalamus")
    return h


def _project(sim, source, target, syn: Synapses, sel: np.ndarray, source_offset: int, target_offset: int,
             label: str):
    """One FromListConnector projection of the selected synapses; the receptor follows the
    sign of the weights (one sign per pair in PD14)."""
    weights_pA = syn.weights_pA[sel]
    receptor = "inhibitory" if weights_pA.size and weights_pA[0] < 0 else "excitatory"
    conn = np.column_stack([syn.sources[sel] - source_offset, syn.targets[sel] - target_offset,
                            np.abs(weights_pA) / PA_PER_NA, syn.delays_ms[sel]])
    return sim.Projection(source, target, sim.FromListConnector(conn, column_names=["weight", "delay"]),
                          receptor_type=receptor, label=label)


def connect(sim, net: Network, h: PyNNNetwork, rng, *, dt_ms: float) -> None:
    """Recurrent synapses (drawn here), background and thalamic input."""
    h.recurrent = Synapses(*connectivity.draw_recurrent(rng, net, dt_ms))
    offsets = connectivity.population_offsets(net)
    bounds = np.append(offsets, net.n_neurons)
    # draw_recurrent lists the pairs in [target, source] order, each pair contiguous
    pair_of = np.searchsorted(bounds, h.recurrent.targets, side="right") - 1
    pair_of = pair_of * len(P.POPULATIONS) + np.searchsorted(bounds, h.recurrent.sources, side="right") - 1
    for i, target in enumerate(h.populations):
        for j, source in enumerate(h.populations):
            if net.num_synapses[i, j] == 0:
                continue
            sel = pair_of == i * len(P.POPULATIONS) + j
            h.projections.append(_project(sim, source, target, h.recurrent, sel, offsets[j], offsets[i],
                                          f"{P.POPULATIONS[j]}->{P.POPULATIONS[i]}"))
    for p, (source, target) in enumerate(zip(h.background, h.populations)):
        h.projections.append(sim.Projection(
            source, target, sim.OneToOneConnector(),
            sim.StaticSynapse(weight=net.weight_ext_pA / PA_PER_NA, delay=P.DELAY_POISSON_MS),
            receptor_type="excitatory", label=f"background->{P.POPULATIONS[p]}"))
    if h.thalamus is not None:
        h.thalamic = Synapses(*connectivity.draw_thalamic(rng, net, dt_ms))
        for i, target in enumerate(h.populations):
            sel = (h.thalamic.targets >= offsets[i]) & (h.thalamic.targets < bounds[i + 1])
            if sel.any():
                h.projections.append(_project(sim, h.thalamus, target, h.thalamic, sel, 0, offsets[i],
                                              f"thalamus->{P.POPULATIONS[i]}"))
