"""Quantities derived from the PD14 parameters, computed once and in one place.

``derive()`` turns the user's model settings (scales, drive, thalamic input) into a
``Network`` description that every backend builder reads. Formulas follow Potjans &
Diesmann (2014) and, for down-scaling, van Albada, Helias & Diesmann (2015), as implemented
by the INM-6 reference package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikescale.models.pd14 import params as P

DRIVES = ("poisson", "dc")


def psc_over_psp(C_m_pF: float, tau_m_ms: float, tau_syn_ms: float) -> float:
    """Factor (pA/mV) turning a PSP peak amplitude into the PSC amplitude that causes it."""
    sub = 1.0 / (tau_syn_ms - tau_m_ms)
    pre = tau_m_ms * tau_syn_ms / C_m_pF * sub
    frac = (tau_m_ms / tau_syn_ms) ** sub
    return 1.0 / (pre * (frac**tau_m_ms - frac**tau_syn_ms))


def synapses_from_conn_probs(conn_probs, n_post, n_pre) -> np.ndarray:
    """Total synapse number per pair that gives connection probability C when drawn with
    replacement: K = ln(1 - C) / ln(1 - 1 / (N_pre N_post)). Not rounded."""
    prod = np.outer(n_post, n_pre).astype(float)
    return np.log(1.0 - np.asarray(conn_probs, dtype=float)) / np.log((prod - 1.0) / prod)


def dc_equivalent_of_poisson_pA(k_ext, psc_ext_pA: float) -> np.ndarray:
    """DC amplitude (pA) with the same mean input as K_ext Poisson sources at BG_RATE_HZ."""
    tau_syn_ms = P.NEURON["tau_syn_ms"]
    return P.BG_RATE_HZ * np.asarray(k_ext, float) * psc_ext_pA * tau_syn_ms * 1e-3


@dataclass(frozen=True)
class Network:
    """Everything a builder needs to instantiate PD14 at one scale. Arrays follow
    ``params.POPULATIONS``; matrices are [target, source]."""

    n_scaling: float
    k_scaling: float
    drive: str
    thalamic_input: bool
    num_neurons: np.ndarray  # neurons per population (int)
    num_synapses: np.ndarray  # recurrent synapses per [target, source] pair (int)
    weight_mean_pA: np.ndarray  # mean PSC amplitude per pair (pA), after K scaling
    delay_mean_ms: np.ndarray  # mean delay per pair (ms)
    ext_indegree: np.ndarray  # external in-degree per population after K scaling (int)
    weight_ext_pA: float  # PSC amplitude of external input (pA), after K scaling
    poisson_rate_hz: np.ndarray  # total Poisson rate per neuron (0 with DC drive)
    dc_amp_pA: np.ndarray  # DC input per neuron (pA): DC drive and/or K compensation
    num_th_synapses: np.ndarray  # thalamic synapses per target population (int)
    weight_th_pA: float  # thalamic PSC amplitude (pA), after K scaling

    @property
    def n_neurons(self) -> int:
        return int(self.num_neurons.sum())

    @property
    def n_synapses(self) -> int:
        """Recurrent synapses among the 8 populations (the figure PD14 papers quote)."""
        return int(self.num_synapses.sum())

    @property
    def out_degree(self) -> np.ndarray:
        """Mean recurrent out-degree of a neuron in each source population: a spike of
        population j becomes out_degree[j] synaptic events."""
        return self.num_synapses.sum(axis=0) / np.maximum(self.num_neurons, 1)

    def connections_total(self) -> int:
        """Every connection a simulator stores: recurrent, external input (one per neuron
        with Poisson drive) and thalamic. Used for NEST's per-VP connection cap."""
        external = self.n_neurons if self.drive == "poisson" else 0
        return self.n_synapses + external + int(self.num_th_synapses.sum())


def full_scale_synapses() -> np.ndarray:
    """Unrounded full-scale synapse numbers [target, source]."""
    n = np.asarray(P.FULL_NUM_NEURONS)
    return synapses_from_conn_probs(P.CONN_PROBS, n, n)


def weight_matrix_psp_mV() -> np.ndarray:
    """Mean PSP per pair (mV): excitatory columns +0.15, inhibitory columns g x 0.15,
    L4E -> L23E doubled."""
    n_pops = len(P.POPULATIONS)
    psp = np.zeros((n_pops, n_pops))
    psp[:, 0::2] = P.PSP_EXC_MEAN_MV
    psp[:, 1::2] = P.PSP_EXC_MEAN_MV * P.G_INH
    psp[P.POPULATIONS.index("L23E"), P.POPULATIONS.index("L4E")] *= P.L4E_TO_L23E_FACTOR
    return psp


def delay_matrix_ms() -> np.ndarray:
    n_pops = len(P.POPULATIONS)
    delay = np.zeros((n_pops, n_pops))
    delay[:, 0::2] = P.DELAY_EXC_MEAN_MS
    delay[:, 1::2] = P.DELAY_INH_MEAN_MS
    return delay


def derive(n_scaling: float, k_scaling: float, drive: str, thalamic_input: bool = False,
           weight_factor: float = 1.0) -> Network:
    """Derive the network at scale (n_scaling, k_scaling) with the given drive.

    ``weight_factor`` multiplies every recurrent weight and nothing else (the DC
    compensation keeps the correct weights). Anything but 1 is a deliberately wrong PD14:
    it exists so that the validation can be shown to catch a wrong model."""
    if not 0.0 < n_scaling <= 1.0 or not 0.0 < k_scaling <= 1.0:
        raise ValueError(f"scales must lie in (0, 1], got n_scaling={n_scaling}, k_scaling={k_scaling}")
    if drive not in DRIVES:
        raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}")

    full_n = np.asarray(P.FULL_NUM_NEURONS)
    full_syn = full_scale_synapses()
    k_ext_full = np.asarray(P.K_EXT, float)

    factor = psc_over_psp(P.NEURON["C_m_pF"], P.NEURON["tau_m_ms"], P.NEURON["tau_syn_ms"])
    weight_full_pA = weight_matrix_psp_mV() * factor
    psc_ext_full_pA = P.PSP_EXC_MEAN_MV * factor

    if drive == "poisson":
        dc_pA = np.zeros(len(P.POPULATIONS))
    else:
        dc_pA = dc_equivalent_of_poisson_pA(k_ext_full, psc_ext_full_pA)

    # Down-scaling the in-degree: weights grow by 1/sqrt(K) to keep the input variance,
    # and a DC term replaces the mean input that the missing synapses carried.
    sqrt_k = np.sqrt(k_scaling)
    weight_pA = weight_full_pA / sqrt_k
    psc_ext_pA = psc_ext_full_pA / sqrt_k
    if k_scaling != 1.0:
        tau_syn_ms = P.NEURON["tau_syn_ms"]
        indegree_full = full_syn / full_n[:, np.newaxis]
        input_rec_pA = np.sum(weight_full_pA * indegree_full * np.asarray(P.FULL_MEAN_RATES_HZ), axis=1)
        dc_pA = dc_pA + 1e-3 * tau_syn_ms * (1.0 - sqrt_k) * input_rec_pA
        if drive == "poisson":
            input_ext_pA = psc_ext_full_pA * k_ext_full * P.BG_RATE_HZ
            dc_pA = dc_pA + 1e-3 * tau_syn_ms * (1.0 - sqrt_k) * input_ext_pA

    ext_indegree = np.round(k_ext_full * k_scaling).astype(int)
    poisson_rate_hz = P.BG_RATE_HZ * ext_indegree if drive == "poisson" else np.zeros(len(P.POPULATIONS))

    th = P.THALAMUS
    if thalamic_input:
        th_syn = synapses_from_conn_probs([th["conn_probs"]], [th["num_neurons"]], full_n)[0]
        # As in the reference: thalamic synapse counts follow K_scaling only.
        num_th = np.round(th_syn * k_scaling).astype(int)
    else:
        num_th = np.zeros(len(P.POPULATIONS), dtype=int)
    weight_th_pA = th["psp_mV"] * factor / sqrt_k

    return Network(
        n_scaling=float(n_scaling),
        k_scaling=float(k_scaling),
        drive=drive,
        thalamic_input=bool(thalamic_input),
        num_neurons=np.round(full_n * n_scaling).astype(int),
        num_synapses=np.round(full_syn * n_scaling * k_scaling).astype(int),
        weight_mean_pA=weight_pA * float(weight_factor),
        delay_mean_ms=delay_matrix_ms(),
        ext_indegree=ext_indegree,
        weight_ext_pA=float(psc_ext_pA),
        poisson_rate_hz=poisson_rate_hz.astype(float),
        dc_amp_pA=dc_pA,
        num_th_synapses=num_th,
        weight_th_pA=float(weight_th_pA),
    )


def network_of(spec) -> Network:
    """The network a run spec asks for: its model settings n_scaling, k_scaling, drive,
    thalamic_input and, in a deliberately wrong model, weight_factor (absent means 1). The
    spec is a run's JSON as a dict, as the harness and the backends get it."""
    return derive(spec["n_scaling"], spec["k_scaling"], spec["drive"], spec["thalamic_input"],
                  spec.get("weight_factor", 1.0))


def min_virtual_processes_nest(network: Network) -> int:
    """Fewest NEST virtual processes that keep every VP under NEST's connection cap.
    Connections are spread over VPs by target neuron, so the load per VP is about the
    total divided by the VP count."""
    return max(1, int(np.ceil(network.connections_total() / P.NEST_MAX_CONNECTIONS_PER_VP)))
