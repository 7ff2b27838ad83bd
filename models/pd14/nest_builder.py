"""PD14 on NEST 3.10: build the network described by ``spikescale.models.pd14.derived.Network``.

The builder follows the INM-6 reference (``microcircuit/network.py``): iaf_psc_exp,
fixed-total-number connectivity with autapses and multapses, normal weights redrawn to keep
their sign, normal delays redrawn to at least one step, one Poisson generator per population
(independent spike trains per target neuron) or DC drive, optimized initial potentials, and
optional thalamic input through parrot neurons. It only builds; timing belongs to the harness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikescale.models.pd14 import params as P
from spikescale.models.pd14.derived import Network


# Recurrent synapses get a synapse model of their own, a copy of static_synapse: NEST then
# counts them apart from every device connection (GetDefaults(model)["num_connections"]).
RECURRENT_SYNAPSE = "pd14_recurrent"


@dataclass
class NestNetwork:
    """Handles to what the builder created."""

    populations: list
    spike_recorders: list = field(default_factory=list)
    poisson_generators: object = None
    thalamic_neurons: object = None
    thalamic_generator: object = None


def setup_kernel(nest, *, dt_ms: float, threads_per_task: int, seed: int) -> None:
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.local_num_threads = int(threads_per_task)
    nest.resolution = float(dt_ms)
    nest.rng_seed = int(seed)
    nest.print_time = False
    nest.CopyModel("static_synapse", RECURRENT_SYNAPSE)


def create(nest, net: Network, *, record_spikes: bool) -> NestNetwork:
    """Create neurons, drive and (optionally) spike recorders."""
    neuron = P.NEURON
    pops = []
    for i in range(len(P.POPULATIONS)):
        pop = nest.Create(P.NEURON_MODEL, int(net.num_neurons[i]))
        pop.set(
            C_m=neuron["C_m_pF"],
            tau_m=neuron["tau_m_ms"],
            tau_syn_ex=neuron["tau_syn_ms"],
            tau_syn_in=neuron["tau_syn_ms"],
            E_L=neuron["E_L_mV"],
            V_th=neuron["V_th_mV"],
            V_reset=neuron["V_reset_mV"],
            t_ref=neuron["t_ref_ms"],
            I_e=float(net.dc_amp_pA[i]),
        )
        pop.set(V_m=nest.random.normal(P.V0_MEAN_MV[i], P.V0_STD_MV[i]))
        pops.append(pop)

    handles = NestNetwork(populations=pops)
    if record_spikes:
        handles.spike_recorders = [nest.Create("spike_recorder", params={"record_to": "memory"}) for _ in pops]
    if net.drive == "poisson":
        handles.poisson_generators = nest.Create("poisson_generator", n=len(pops))
        handles.poisson_generators.rate = [float(r) for r in net.poisson_rate_hz]
    if net.thalamic_input:
        th = P.THALAMUS
        handles.thalamic_neurons = nest.Create("parrot_neuron", th["num_neurons"])
        handles.thalamic_generator = nest.Create(
            "poisson_generator",
            params={"rate": th["rate_hz"], "start": th["start_ms"], "stop": th["start_ms"] + th["duration_ms"]},
        )
    return handles


def _normal_redrawn(nest, mean: float, rel_std: float, lo: float, hi: float):
    return nest.math.redraw(nest.random.normal(mean=mean, std=abs(mean * rel_std)), min=lo, max=hi)


def _delay(nest, mean_ms: float, rel_std: float):
    # Redrawn to >= half a step so that rounding to the grid gives at least one step.
    return _normal_redrawn(nest, mean_ms, rel_std, 0.5 * nest.resolution, np.inf)


def connect(nest, net: Network, h: NestNetwork) -> None:
    """Connect recurrent synapses, drive, thalamus and recorders. Ends with Prepare() and
    Cleanup() so that building the presynaptic infrastructure counts as connecting, as in
    the reference, and not as the first simulation step."""
    for i, target in enumerate(h.populations):
        for j, source in enumerate(h.populations):
            n_syn = int(net.num_synapses[i, j])
            if n_syn == 0:
                continue
            w_mean = float(net.weight_mean_pA[i, j])
            w_lo, w_hi = (-np.inf, 0.0) if w_mean < 0 else (0.0, np.inf)
            nest.Connect(
                source,
                target,
                conn_spec={"rule": "fixed_total_number", "N": n_syn, "allow_autapses": True, "allow_multapses": True},
                syn_spec={
                    "synapse_model": RECURRENT_SYNAPSE,
                    "weight": _normal_redrawn(nest, w_mean, P.WEIGHT_REL_STD, w_lo, w_hi),
                    "delay": _delay(nest, float(net.delay_mean_ms[i, j]), P.DELAY_REL_STD),
                },
            )

    if h.poisson_generators is not None:
        for i, target in enumerate(h.populations):
            nest.Connect(
                h.poisson_generators[i],
                target,
                conn_spec={"rule": "all_to_all"},
                syn_spec={"synapse_model": "static_synapse", "weight": net.weight_ext_pA, "delay": P.DELAY_POISSON_MS},
            )

    if h.thalamic_neurons is not None:
        th = P.THALAMUS
        nest.Connect(h.thalamic_generator, h.thalamic_neurons)
        for i, target in enumerate(h.populations):
            n_th = int(net.num_th_synapses[i])
            if n_th == 0:
                continue
            nest.Connect(
                h.thalamic_neurons,
                target,
                conn_spec={"rule": "fixed_total_number", "N": n_th},
                syn_spec={
                    "weight": _normal_redrawn(nest, net.weight_th_pA, P.WEIGHT_REL_STD, 0.0, np.inf),
                    "delay": _delay(nest, th["delay_mean_ms"], th["delay_rel_std"]),
                },
            )

    if h.spike_recorders:  # validation runs only; performance runs record nothing
        for pop, recorder in zip(h.populations, h.spike_recorders, strict=True):
            nest.Connect(pop, recorder)

    nest.Prepare()
    nest.Cleanup()


def recurrent_synapse_count(nest) -> int:
    """Recurrent synapses as NEST holds them on this MPI rank (all of its threads)."""
    return int(nest.GetDefaults(RECURRENT_SYNAPSE, "num_connections"))


def spikes_by_population(h: NestNetwork) -> list[tuple[np.ndarray, np.ndarray]]:
    """(senders, times_ms) per population, from the spike recorders of this rank."""
    out = []
    for recorder in h.spike_recorders:
        events = recorder.get("events")
        out.append((np.asarray(events["senders"], dtype=np.int64), np.asarray(events["times"], dtype=np.float64)))
    return out
