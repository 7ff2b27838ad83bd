"""PD14's random network drawn with numpy, for the builders that take explicit connectivity
(Brian2 and brian2genn, sPyNNaker and the SpiNNaker emulator). NEST draws its own with the
same rules (``nest_builder``).

- for every [target, source] pair the fixed total number of synapses of ``derive()``,
  sources and targets drawn uniformly with replacement (multapses and autapses allowed);
- weights normal with sd 10 % of the mean, redrawn to keep their sign;
- delays normal with sd half the mean, redrawn to be >= half a step and rounded to the grid
  as NEST does (so at least one step);
- initial membrane potentials normal per population ("optimized" initial state).
"""

from __future__ import annotations

import numpy as np

from spikescale.models.pd14 import params as P
from spikescale.models.pd14.derived import Network


def population_offsets(net: Network) -> np.ndarray:
    """Index of each population's first neuron in the one NeuronGroup."""
    return np.concatenate([[0], np.cumsum(net.num_neurons)[:-1]]).astype(np.int64)


def _normal_redrawn(rng, mean: float, sd: float, n: int, lo: float, hi: float) -> np.ndarray:
    """n values of N(mean, sd), each outside [lo, hi] drawn again (NEST's math.redraw)."""
    values = rng.normal(mean, sd, n)
    bad = (values < lo) | (values > hi)
    while bad.any():
        values[bad] = rng.normal(mean, sd, int(bad.sum()))
        bad = (values < lo) | (values > hi)
    return values


def draw_delays_ms(rng, mean_ms: float, rel_std: float, n: int, dt_ms: float) -> np.ndarray:
    """Normal delays redrawn to >= half a step, then rounded to the grid as NEST rounds
    (to the nearest step, halves up): never less than one step."""
    d = _normal_redrawn(rng, mean_ms, abs(mean_ms * rel_std), n, 0.5 * dt_ms, np.inf)
    return np.floor(d / dt_ms + 0.5) * dt_ms


def draw_weights_pA(rng, mean_pA: float, n: int) -> np.ndarray:
    lo, hi = (-np.inf, 0.0) if mean_pA < 0 else (0.0, np.inf)
    return _normal_redrawn(rng, mean_pA, abs(mean_pA * P.WEIGHT_REL_STD), n, lo, hi)


def draw_projection(rng, net: Network, target: int, source: int, dt_ms: float):
    """(sources, targets, weights_pA, delays_ms) of one [target, source] pair, indices
    within the populations; the fixed total number drawn with replacement."""
    n = int(net.num_synapses[target, source])
    sources = rng.integers(0, int(net.num_neurons[source]), n, dtype=np.int64)
    targets = rng.integers(0, int(net.num_neurons[target]), n, dtype=np.int64)
    weights = draw_weights_pA(rng, float(net.weight_mean_pA[target, source]), n)
    delays = draw_delays_ms(rng, float(net.delay_mean_ms[target, source]), P.DELAY_REL_STD, n, dt_ms)
    return sources, targets, weights, delays


def draw_recurrent(rng, net: Network, dt_ms: float):
    """Every recurrent synapse as indices of the one NeuronGroup:
    (sources, targets, weights_pA, delays_ms), pairs in [target, source] order."""
    offsets = population_offsets(net)
    parts = []
    n_pops = len(P.POPULATIONS)
    for i in range(n_pops):
        for j in range(n_pops):
            if net.num_synapses[i, j] == 0:
                continue
            s, t, w, d = draw_projection(rng, net, i, j, dt_ms)
            parts.append((s + offsets[j], t + offsets[i], w, d))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def draw_thalamic(rng, net: Network, dt_ms: float):
    """Thalamic synapses (sources in 0..901, targets in the NeuronGroup, weights, delays)."""
    th = P.THALAMUS
    offsets = population_offsets(net)
    parts = []
    for i in range(len(P.POPULATIONS)):
        n = int(net.num_th_synapses[i])
        if n == 0:
            continue
        sources = rng.integers(0, th["num_neurons"], n, dtype=np.int64)
        targets = rng.integers(0, int(net.num_neurons[i]), n, dtype=np.int64) + offsets[i]
        weights = draw_weights_pA(rng, net.weight_th_pA, n)
        delays = draw_delays_ms(rng, th["delay_mean_ms"], th["delay_rel_std"], n, dt_ms)
        parts.append((sources, targets, weights, delays))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def initial_potentials_mV(rng, net: Network) -> np.ndarray:
    """'Optimized' initial V: normal per population."""
    return np.concatenate([rng.normal(P.V0_MEAN_MV[i], P.V0_STD_MV[i], int(n))
                           for i, n in enumerate(net.num_neurons)])
