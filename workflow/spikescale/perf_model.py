"""The forms of spikescale's performance and memory models, declared once.

Each figure a run costs is a sum of terms one can read, each a constant times a feature of
the run's configuration (its model size and its resource shape):

- simulation time per model second (the real-time factor): work that divides over the
  parallel units (virtual processes; one for a backend that runs on one core), in
  proportion to the synaptic events and to the neuron updates; a part that does not divide;
  and a communication part that grows with the number of MPI ranks (NEST exchanges spikes
  between all ranks once per minimum delay, so its cost grows with the ranks even when the
  spikes do not);
- construction time: the same, with the synapses to create in place of the events;
- peak memory of one rank: a base, a share per neuron and per synapse the rank holds, and
  buffers that grow with the ranks (in the spirit of NEST's memory model, Kunkel et al.
  2012, Front. Neuroinform. 6:00015), plus a part per thread (NEST keeps per-thread
  structures).

The configuration advisor (spikescale.analysis.advisor) fits the constants from a campaign;
the estimate before submission (spikescale.estimate) evaluates the same forms with the
constants shipped in ESTIMATE_MEMORY (fitted by the advisor's check, docs/advisor.md). Both
read the features here, so a term means the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from spikescale.campaign import ResourceCounts
from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P

# Backends whose work divides over all of a run's virtual processes. The others use one core
# whatever the shape: PyGeNN's CPU backend and the SpiNNaker emulator (on a GPU or a board
# the host's cores do not set the speed either).
PARALLEL_BACKENDS = frozenset({"nest", "brian2"})


@dataclass(frozen=True)
class Configuration(ResourceCounts):
    """What the models read of one run, measured or planned."""

    backend: str
    n_neurons: float
    n_synapses: float  # recurrent synapses (runs.csv n_synapses, derived.Network.n_synapses)
    events_per_model_s: float  # recurrent synaptic events per second of model time
    spikes_per_model_s: float  # spikes per second of model time (all neurons)
    input_events_per_model_s: float  # external (Poisson) input deliveries per model second
    steps_per_model_s: float  # time steps per second of model time (1000 / dt_ms)
    nodes: int
    tasks_per_node: int
    threads_per_task: int

    @property
    def parallel_units(self) -> int:
        """What the divisible work is divided by."""
        return self.virtual_processes if self.backend in PARALLEL_BACKENDS else 1


@dataclass(frozen=True)
class Term:
    name: str  # with its unit: the constant's unit is the figure's over the feature's
    meaning: str
    feature: Callable[[Configuration], float]
    kind: str  # work (divides over the parallel units), serial, communication, base, per_rank


# The real-time factor (seconds of wall time per second of model time) of the simulation phase.
RTF_TERMS = (
    Term("core_s_per_event", "work per synaptic event, divided over the parallel units",
         lambda c: c.events_per_model_s / c.parallel_units, "work"),
    Term("core_s_per_neuron_step", "work per neuron update, divided over the parallel units",
         lambda c: c.n_neurons * c.steps_per_model_s / c.parallel_units, "work"),
    # NEST's poisson_generator draws a count per target and time step and delivers one event
    # (with that multiplicity) when it is not zero: the deliveries grow with the rate, which
    # PD14's K_scaling scales, and saturate at one per step (input_deliveries_per_model_s)
    Term("core_s_per_input_event", "work per external input delivery, divided over the parallel units",
         lambda c: c.input_events_per_model_s / c.parallel_units, "work"),
    # a spike costs something before it reaches any target (NEST: its targets looked up and
    # sent to every rank); at small scales, where PD14's in-degrees shrink with the scale, a
    # spike has few targets and this part is large
    Term("core_s_per_spike", "work per spike, whatever its targets, divided over the parallel units",
         lambda c: c.spikes_per_model_s / c.parallel_units, "work"),
    Term("s_serial", "a part that does not divide (per model second)", lambda c: 1.0, "serial"),
    Term("s_per_extra_rank", "communication: grows with the MPI ranks beyond the first (per model second)",
         lambda c: float(c.ranks - 1), "communication"),
)

# Construction (create and connect) in seconds.
CONSTRUCT_TERMS = (
    Term("core_s_per_synapse", "work per synapse created, divided over the parallel units",
         lambda c: c.n_synapses / c.parallel_units, "work"),
    Term("core_s_per_neuron", "work per neuron created, divided over the parallel units",
         lambda c: c.n_neurons / c.parallel_units, "work"),
    Term("s_serial", "a part that does not divide (start-up of the kernel, set-up)", lambda c: 1.0, "serial"),
    Term("s_per_extra_rank", "communication: grows with the MPI ranks beyond the first",
         lambda c: float(c.ranks - 1), "communication"),
)

# Peak resident memory of one rank in MB (10^6 bytes). Neurons and synapses are spread
# evenly over the ranks (NEST distributes them by target neuron).
MEMORY_TERMS = (
    Term("mb_base", "per rank: interpreter, simulator, kernel", lambda c: 1.0, "base"),
    Term("mb_per_neuron", "per neuron the rank holds", lambda c: c.n_neurons / c.ranks, "work"),
    Term("mb_per_synapse", "per synapse the rank holds", lambda c: c.n_synapses / c.ranks, "work"),
    Term("mb_per_rank", "buffers that grow with the ranks (per rank beyond the first)",
         lambda c: float(c.ranks - 1), "per_rank"),
    Term("mb_per_thread", "per thread beyond the first (per-thread structures)",
         lambda c: float(c.threads_per_task - 1), "per_rank"),
)

# Energy of the simulation phase per model second (J): the power of the nodes used while it
# runs, times the predicted wall time; fitted as power per node plus per core used.
POWER_TERMS = (
    Term("w_per_node", "power of a node in use (idle and uncore included)", lambda c: float(c.nodes), "base"),
    Term("w_per_core", "power per parallel unit at work (virtual processes; one for a one-core backend)",
         lambda c: float(c.parallel_units), "work"),
)

FIGURES = {"rtf": RTF_TERMS, "t_construct_s": CONSTRUCT_TERMS, "mem_rank_mb": MEMORY_TERMS}


def features(terms, configs) -> np.ndarray:
    """The design matrix: one row per configuration, one column per term."""
    return np.array([[t.feature(c) for t in terms] for c in configs], dtype=float)


def evaluate(terms, constants, config: Configuration) -> float:
    """A figure from its constants (a mapping term name -> value; a term left out counts 0)."""
    return float(sum(constants.get(t.name, 0.0) * t.feature(config) for t in terms))


def expected_events_per_model_s(net: derived.Network) -> float:
    """Recurrent synaptic events per model second at PD14's full-scale mean rates (the
    K_scaling compensation keeps the rates close at smaller scales)."""
    return float((np.asarray(P.FULL_MEAN_RATES_HZ) * net.num_neurons * net.out_degree).sum())


def input_deliveries_per_model_s(net: derived.Network, dt_ms: float) -> float:
    """External input deliveries per model second: each neuron's Poisson input delivers in a
    time step when its Poisson count is not zero, i.e. with probability 1 - exp(-rate dt) (zero
    with DC drive). Known from the model: measured runs and planned ones alike use it."""
    p_step = 1.0 - np.exp(-np.asarray(net.poisson_rate_hz, float) * dt_ms * 1e-3)
    return float((net.num_neurons * p_step).sum() * 1000.0 / dt_ms)


def expected_spikes_per_model_s(net: derived.Network) -> float:
    """Spikes per model second at PD14's full-scale mean rates."""
    return float((np.asarray(P.FULL_MEAN_RATES_HZ) * net.num_neurons).sum())


def planned_configuration(backend: str, n_scaling: float, k_scaling: float, drive: str, dt_ms: float,
                          nodes: int, tasks_per_node: int, threads_per_task: int,
                          thalamic_input: bool = False, rate_factor: float = 1.0) -> Configuration:
    """The configuration of a run not made: sizes from the model's parameters, spikes and events
    at the full-scale rates times ``rate_factor`` (the advisor passes what its campaign measured)."""
    net = derived.derive(n_scaling, k_scaling, drive, thalamic_input)
    return Configuration(backend, float(net.n_neurons), float(net.n_synapses),
                         expected_events_per_model_s(net) * rate_factor,
                         expected_spikes_per_model_s(net) * rate_factor, input_deliveries_per_model_s(net, dt_ms),
                         1000.0 / dt_ms,
                         int(nodes), int(tasks_per_node), int(threads_per_task))


# The memory model the estimate before submission uses (spikescale.estimate), per backend:
# constants of MEMORY_TERMS and how they were found.
_CALIBRATION = ("tests/benchmarks/memory_calibration.py at PD14 scales 0.05, 0.1, 0.2 (whole process tree, one rank, "
                "one thread: no rank or thread term measured)")
ESTIMATE_MEMORY: dict[str, dict] = {
    # NEST 3.10: the advisor's fit (make advisor-check, docs/advisor.md) at scales 0.05-0.2 with
    # 1-2 threads and 1-2 ranks (MPI build) predicted its held-back full-scale run, 12,383 MB, as
    # 11,050 MB (-11 %); the PyPI wheel (the default software) peaked at 15,124 MB at full scale
    # (tests/benchmarks/full_scale.py). The estimate refuses on the larger: base, neuron, rank and
    # thread terms as fitted, the share per synapse raised to meet the PyPI wheel's full-scale
    # peak (47.9 B; fitted 34.3 B).
    "nest": {"constants": {"mb_base": 75.4, "mb_per_neuron": 0.00912, "mb_per_synapse": 4.79e-5,
                           "mb_per_rank": 0.0, "mb_per_thread": 4.46},
             "basis": "fitted by the advisor at scales 0.05-0.2 (make advisor-check), per synapse raised to the "
                      "PyPI wheel's full-scale peak (15.1 GB, tests/benchmarks/full_scale.py)"},
    # Brian2 2.9 (cpp_standalone): the Python side draws the connectivity with numpy (int64
    # indices, float64 weights and delays) and keeps it while the compiled program (a child
    # process) loads it again: 163 MB + 123 B per connection fitted, the process tree's peak.
    "brian2": {"constants": {"mb_base": 170.0, "mb_per_synapse": 1.25e-4},
               "basis": _CALIBRATION + "; the Python process and its compiled program together"},
    # PyGeNN 5.4 on the CPU backend (host memory; on a GPU the device holds the synapses): 91 MB
    # + 40.7 B per connection fitted.
    "genn": {"constants": {"mb_base": 100.0, "mb_per_synapse": 4.2e-5}, "basis": _CALIBRATION + "; CPU backend only"},
    # The SpiNNaker emulator: sPyNNaker's synaptic matrices as the board would hold them plus
    # the emulator's arrays: 207 MB + 187 B per connection fitted.
    "spinnaker": {"constants": {"mb_base": 210.0, "mb_per_synapse": 1.9e-4},
                  "basis": _CALIBRATION + "; the emulator only (a board holds its own memory)"},
}
