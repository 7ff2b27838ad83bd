"""PD14 as a SpiNNaker board computes it, in software: the fallback when no board is reachable.

The emulator follows sPyNNaker 7.4's IF_curr_exp with exponential current synapses (the C
code of its neuron and synapse cores; docs/spinnaker.md lists each rule with its source):

- state in s16.15 fixed point (``accum``: 32-bit integers in units of 2^-15), held here as
  int64 arrays of those integers; products of two accums are done as the ARM code does them
  (``_mul_k``), decays by an unsigned 0.32 fraction as ``decay_s1615`` does (``_decay``);
- the neuron's constants (exp(-dt/tau_m), R = tau_m/C_m, the synaptic decay and its input
  scaling tau/dt (1 - decay), the refractory steps) are derived as the core derives them at
  start-up, from the s16.15 parameters the host sends (``Constants``);
- order within a step as the core does it: the ring-buffer slot of this step enters the
  synaptic currents, the membrane is updated (unless refractory), the threshold is tested
  (V >= V_thresh), then the synaptic currents decay;
- weights are 16-bit integers in units of 2^(shift-15) nA, with the ring-buffer shift that
  sPyNNaker's own mapping chose for each population and synapse type, rounded as sPyNNaker
  rounds them; a ring-buffer slot saturates at 0xFFFF (counted);
- delays are whole steps (at least one), capped at what the mapping accepted;
- the background is a Poisson number of spikes per source and step (sPyNNaker's fast
  Poisson sources), drawn with numpy: the board's own random generator is not reproduced.

It is vectorised over neurons and sparse over synapses: one step costs a few numpy calls on
the whole population plus the synapses of the neurons that spiked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ONE = 1 << 15  # 1.0 in s16.15
U032_ONE = 1 << 32  # 1.0 in u0.32 (never reached: the largest u0.32 is 1 - 2^-32)
RING_BUFFER_MAX = 0xFFFF  # a ring-buffer slot is 16 bits and saturates
EXCITATORY, INHIBITORY = 0, 1


def to_s1615(value) -> np.ndarray:
    """Host-side encoding of a parameter as s16.15 (sPyNNaker's DataType.S1615: rounded)."""
    return np.round(np.asarray(value, dtype=np.float64) * ONE).astype(np.int64)


def _mul_k(a: np.ndarray, b) -> np.ndarray:
    """accum x accum as the board computes it: the 64-bit product shifted right by 15
    (arithmetic shift, i.e. rounded towards minus infinity)."""
    return (a * b) >> 15


def _decay(a: np.ndarray, d: int) -> np.ndarray:
    """decay_s1615(a, d): a x d for a u0.32 fraction d, the 64-bit product shifted right by 32."""
    return (a * d) >> 32


@dataclass(frozen=True)
class Constants:
    """The per-neuron constants as the board holds them (integers: s16.15 or u0.32)."""

    v_rest: int
    v_reset: int
    v_thresh: int
    r_membrane: int  # tau_m / C_m in MOhm (mV per nA), s16.15
    exp_tc: int  # exp(-dt / tau_m), s16.15
    syn_decay: int  # exp(-dt / tau_syn), u0.32
    syn_init: int  # scaling of a ring-buffer input as it enters the synaptic current, u0.32
    t_refract_steps: int

    @classmethod
    def for_lif(cls, *, dt_ms: float, tau_m_ms: float, cm_nF: float, tau_syn_ms: float, tau_refrac_ms: float,
                v_rest_mV: float, v_reset_mV: float, v_thresh_mV: float) -> Constants:
        """The host sends the parameters as s16.15 (rounded); the core derives its constants
        from those with its own fixed-point division (neuron_model_initialise,
        decay_and_init). dt = 0.1 ms is 3277 / 2^15 = 0.100006 ms there."""
        ts, tau_m, cm, tau_syn, t_ref = (int(to_s1615(x)) for x in (dt_ms, tau_m_ms, cm_nF, tau_syn_ms, tau_refrac_ms))
        ts_over_tau_syn = _kdivk(ts, tau_syn)
        decay = _expulr(-ts_over_tau_syn)
        inv_decay = (U032_ONE - 1) - decay  # 1.0ulr is the largest u0.32, 1 - 2^-32
        init = ((_kdivk(tau_syn, ts) * inv_decay) >> 15) & (U032_ONE - 1)  # decay_s1615_to_u032
        t_ref_raw = _kdivk(t_ref, ts)
        return cls(v_rest=int(to_s1615(v_rest_mV)), v_reset=int(to_s1615(v_reset_mV)),
                   v_thresh=int(to_s1615(v_thresh_mV)), r_membrane=_kdivk(tau_m, cm),
                   exp_tc=_expk(-_kdivk(ts, tau_m)), syn_decay=decay, syn_init=init,
                   t_refract_steps=(t_ref_raw >> 15) + (1 if t_ref_raw & 0x7FFF else 0))  # lif_ceil_accum


def _kdivk(a_raw: int, b_raw: int) -> int:
    """kdivk: a / b of two positive accums, truncated (maths-util.h)."""
    return (a_raw << 15) // b_raw


def _expk(x_raw: int) -> int:
    """expk of an accum, as s16.15 truncated. The board evaluates exp from tables and a short
    series (spinn_common's __expi64); the float exp here agrees with it to about one unit
    in the last place (docs/spinnaker.md)."""
    return int(math.floor(math.exp(x_raw / ONE) * ONE))


def _expulr(x_raw: int) -> int:
    """expulr of a negative accum, as u0.32 (truncated)."""
    return int(min(math.floor(math.exp(x_raw / ONE) * U032_ONE), U032_ONE - 1))


@dataclass
class Projection:
    """Synapses as the emulator stores them: sorted by source, CSR by source."""

    indptr: np.ndarray  # (n_sources + 1,) start of each source's synapses
    slot_rest: np.ndarray  # synapse type x N + target (int64)
    delay_steps: np.ndarray  # int64
    weight_units: np.ndarray  # int64, 16-bit weight in the target's units

    @classmethod
    def build(cls, n_sources: int, n_targets: int, sources, targets, weights_nA, delay_steps, shifts_of_target,
              ) -> Projection:
        """`weights_nA` signed (negative: inhibitory); `shifts_of_target` (n_targets, 2) the
        ring-buffer shift per target neuron and synapse type."""
        sources, targets = np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64)
        order = np.argsort(sources, kind="stable")
        sources, targets = sources[order], targets[order]
        weights_nA, delay_steps = np.asarray(weights_nA, dtype=np.float64)[order], np.asarray(delay_steps, dtype=np.int64)[order]
        syn_type = (weights_nA < 0).astype(np.int64)
        scale = np.exp2(15 - shifts_of_target[targets, syn_type])  # sPyNNaker's weight scale 2^(16-(shift+1))
        # synapse_io: numpy.rint(abs(weight x scale)) as uint32, masked to 16 bits
        units = np.rint(np.abs(weights_nA) * scale).astype(np.int64) & 0xFFFF
        indptr = np.zeros(n_sources + 1, dtype=np.int64)
        np.cumsum(np.bincount(sources, minlength=n_sources), out=indptr[1:])
        return cls(indptr=indptr, slot_rest=syn_type * n_targets + targets, delay_steps=delay_steps,
                   weight_units=units)

    def synapses_of(self, spiking: np.ndarray) -> np.ndarray:
        """Indices of every synapse of the given sources (concatenated)."""
        starts, ends = self.indptr[spiking], self.indptr[spiking + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        first = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return first + np.arange(total, dtype=np.int64)


@dataclass
class Drive:
    """Poisson sources: `rate_per_step[k]` expected spikes per step of source k, each sent
    to its targets through `projection`; active in steps [start_step, stop_step)."""

    rate_per_step: np.ndarray
    projection: Projection
    start_step: int = 0
    stop_step: int | None = None
    one_to_one: bool = False  # source k drives neuron k alone (the background)


class Emulator:
    """The state of every neuron of the network, advanced step by step."""

    def __init__(self, constants: Constants, *, v_init_mV: np.ndarray, i_offset_nA: np.ndarray,
                 recurrent: Projection, shifts: np.ndarray, drives: list[Drive], max_delay_steps: int,
                 seed: int, record_spikes: bool):
        self.c = constants
        self.n = len(v_init_mV)
        self.v = to_s1615(v_init_mV)
        self.i_offset = to_s1615(i_offset_nA)
        self.i_syn = np.zeros((2, self.n), dtype=np.int64)  # excitatory, inhibitory (s16.15, nA)
        self.refract = np.zeros(self.n, dtype=np.int64)
        self.shifts = np.asarray(shifts, dtype=np.int64).T.copy()  # (2, N)
        self.recurrent = recurrent
        self.drives = drives
        self.ring_size = int(max_delay_steps) + 1
        self.ring = np.zeros((self.ring_size, 2, self.n), dtype=np.int64)
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.record_spikes = record_spikes
        self.spike_steps: list[np.ndarray] = []
        self.spike_ids: list[np.ndarray] = []
        self.spikes_total = 0
        self.saturated_slots = 0
        # per drive and source: spikes sent, and packets (steps with at least one spike: a
        # Poisson source sends its count in one packet)
        self.source_spikes = [np.zeros(len(d.rate_per_step), dtype=np.int64) for d in drives]
        self.source_packets = [np.zeros(len(d.rate_per_step), dtype=np.int64) for d in drives]
        self.spikes_per_neuron = np.zeros(self.n, dtype=np.int64)
        for projection in [recurrent] + [d.projection for d in drives]:
            if projection.delay_steps.size and (projection.delay_steps.min() < 1
                                                or projection.delay_steps.max() > max_delay_steps):
                raise ValueError(f"delays must lie in 1..{max_delay_steps} steps (the mapping's cap), got "
                                 f"{projection.delay_steps.min()}..{projection.delay_steps.max()}")

    def _deliver(self, projection: Projection, synapses: np.ndarray, counts: np.ndarray | None = None) -> None:
        slots = (self.step + projection.delay_steps[synapses]) % self.ring_size
        weights = projection.weight_units[synapses] if counts is None else projection.weight_units[synapses] * counts
        np.add.at(self.ring.reshape(-1), slots * (2 * self.n) + projection.slot_rest[synapses], weights)

    def _deliver_one_to_one(self, projection: Projection, counts: np.ndarray) -> None:
        """A background source per neuron: one synapse each, all of one delay and type."""
        slot = (self.step + int(projection.delay_steps[0])) % self.ring_size
        self.ring[slot, EXCITATORY] += counts * projection.weight_units

    def advance(self, n_steps: int, progress=None) -> None:
        c = self.c
        report_every = max(1, n_steps // 10)
        for k in range(n_steps):
            slot = self.step % self.ring_size
            units = self.ring[slot]
            saturated = units > RING_BUFFER_MAX
            if saturated.any():
                self.saturated_slots += int(saturated.sum())
                np.minimum(units, RING_BUFFER_MAX, out=units)
            # the ring buffer's value becomes an input (weight << shift, an s16.15 current),
            # scaled by init as it enters the synaptic current
            self.i_syn += _decay(units << self.shifts, c.syn_init)
            units[:] = 0
            # LIF, closed form, outside the refractory period only
            active = self.refract <= 0
            total = self.i_syn[EXCITATORY] - self.i_syn[INHIBITORY] + self.i_offset
            alpha = _mul_k(total, c.r_membrane) + c.v_rest
            v_new = alpha - _mul_k(alpha - self.v, c.exp_tc)
            self.v = np.where(active, v_new, self.v)
            self.refract = np.where(active, self.refract, self.refract - 1)
            spiked = self.v >= c.v_thresh
            ids = np.flatnonzero(spiked)
            if ids.size:
                self.v[ids] = c.v_reset
                self.refract[ids] = c.t_refract_steps
                self.spikes_total += ids.size
                self.spikes_per_neuron[ids] += 1
                if self.record_spikes:
                    self.spike_steps.append(np.full(ids.size, self.step, dtype=np.int64))
                    self.spike_ids.append(ids)
            # shaping after the update: the synaptic currents decay
            self.i_syn = _decay(self.i_syn, c.syn_decay)
            if ids.size:
                self._deliver(self.recurrent, self.recurrent.synapses_of(ids))
            for d_index, drive in enumerate(self.drives):
                if self.step < drive.start_step or (drive.stop_step is not None and self.step >= drive.stop_step):
                    continue
                counts = self.rng.poisson(drive.rate_per_step)
                self.source_spikes[d_index] += counts
                self.source_packets[d_index] += counts > 0
                if drive.one_to_one:
                    self._deliver_one_to_one(drive.projection, counts)
                else:
                    sources = np.flatnonzero(counts)
                    if sources.size:
                        synapses = drive.projection.synapses_of(sources)
                        per_synapse = np.repeat(counts[sources], np.diff(drive.projection.indptr)[sources])
                        self._deliver(drive.projection, synapses, per_synapse)
            self.step += 1
            if progress is not None and (k + 1) % report_every == 0:
                progress(k + 1, n_steps)

    def spikes(self) -> tuple[np.ndarray, np.ndarray]:
        """(neuron index, step) of every recorded spike, in order of time."""
        if not self.spike_ids:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(self.spike_ids), np.concatenate(self.spike_steps)

