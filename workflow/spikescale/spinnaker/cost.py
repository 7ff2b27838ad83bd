"""Modelled wall time and energy of an emulated SpiNNaker run: what the board would have
taken and drawn, never a measurement. Every figure here is labelled modelled in the record.

Time:
- running: steps x dt x time_scale_factor, as the board's timer ticks (one tick per step,
  dt x time_scale_factor apart);
- loading and extraction: bytes / bandwidth, with the bytes from sPyNNaker's own SDRAM plan of
  the mapped cores and the recorded spikes, and the bandwidths of the machine config
  (``spinnaker.load_mb_per_s``, ``spinnaker.extract_mb_per_s``: assumptions, stated there).

Real time: the board runs in real time when no core overruns its timer tick. The emulator
counts the synaptic events each neuron core's neurons receive; the busiest core's events per
second of model time are compared with those of the published real-time operating point,
full-scale PD14 with DC drive at 64 neurons per core (Rhodes et al. 2019, RTF 1.0). At or
below it: real time is plausible; above it, the load ratio estimates the time_scale_factor
needed. It is an estimate by comparison, not a cycle count.

Energy: SpiNNFrontEndCommon's own energy model (``compute_energy_over_time``, with
SpiNNMachine's power constants for the board version) fed with the mapping's chips and cores,
the modelled times, and the multicast packets the emulated spikes cause on each chip of their
routes. The toolchain itself skips its energy report on a virtual board.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P

REFERENCE_NEURONS_PER_CORE = 64  # Rhodes et al. 2019: full-scale PD14 in real time
REFERENCE_STUDY = "Rhodes et al. 2019 (full-scale PD14, DC drive, 64 neurons per core, real time)"


def reference_events_per_core_s() -> float:
    """Synaptic events per second of model time on the busiest neuron core of the published
    real-time configuration: 64 neurons of the population with the largest input, full-scale
    in-degrees, full-scale rates, DC drive (no background events)."""
    net = derived.derive(1.0, 1.0, "dc")
    indegree = net.num_synapses / np.asarray(P.FULL_NUM_NEURONS)[:, np.newaxis]
    per_neuron = indegree @ np.asarray(P.FULL_MEAN_RATES_HZ)
    return float(REFERENCE_NEURONS_PER_CORE * per_neuron.max())


def realtime_estimate(events_per_core_s: np.ndarray, time_scale_factor: float) -> dict:
    """The busiest core's load against the reference, and what it implies."""
    busiest = float(np.max(events_per_core_s)) if len(events_per_core_s) else 0.0
    ratio = busiest / reference_events_per_core_s()
    needed = max(1.0, float(np.ceil(ratio)))
    fits = ratio <= time_scale_factor
    verdict = (f"real time plausible: the busiest core receives {ratio:.2f}x the synaptic events of the reference"
               if ratio <= 1 else
               f"too much for real time: the busiest core receives {ratio:.2f}x the reference's synaptic events; "
               f"time_scale_factor >= {needed:g} estimated")
    return {"spinnaker_events_per_core_s_max": busiest, "spinnaker_load_vs_realtime_reference": ratio,
            "spinnaker_realtime_plausible": bool(ratio <= 1.0), "spinnaker_time_scale_factor_fits": bool(fits),
            "spinnaker_realtime_estimate": verdict + f" ({REFERENCE_STUDY})"}


def run_time_s(n_steps: int, dt_ms: float, time_scale_factor: float) -> float:
    return n_steps * dt_ms * 1e-3 * time_scale_factor


def transfer_time_s(n_bytes: float, mb_per_s: float) -> float:
    return n_bytes / (mb_per_s * 1e6)


def router_packets(core_rows: list[dict], spikes_by_core: dict[int, int]) -> dict:
    """Multicast packets per chip, as SpiNNaker's routers would count them: a spike leaves
    its core as one packet, counted local on its own chip and external on every other chip
    that has a routing entry for it (SpiNNFrontEndCommon's packet types)."""
    packets: dict = defaultdict(lambda: defaultdict(int))
    for index, spikes in spikes_by_core.items():
        if spikes == 0:
            continue
        row = core_rows[index]
        packets[row["x"], row["y"]]["Local_Multicast_Packets"] += int(spikes)
        for chip in row["route_chip_list"]:
            if chip != (row["x"], row["y"]):
                packets[chip]["External_Multicast_Packets"] += int(spikes)
    return {chip: dict(kinds) for chip, kinds in packets.items()}


def energy_j(version, *, n_chips: int, n_boards: int, core_rows: list[dict], exec_s: float, load_s: float,
             extract_s: float, packets: dict) -> dict:
    """SpiNNFrontEndCommon's energy model for one stretch of running (plus the loading and
    extraction that go with it; mapping happens on the host and is not counted). Returns
    joules of the run (exec), the loading and the extraction."""
    from spinn_front_end_common.interface.interface_functions.compute_energy_used import compute_energy_over_time

    active = defaultdict(int)
    for row in core_rows:
        if row["kind"] != "system":
            active[row["x"], row["y"]] += 1
    # every application core busy for the whole run (the toolchain's own assumption
    # without power-monitor cores), and the monitor cores busy while loading/extracting
    run_active = {xy: (exec_s * n, n) for xy, n in active.items()}
    load_active = {xy: (load_s, 1) for xy in active}
    extract_active = {xy: (extract_s, 1) for xy in active}
    used = compute_energy_over_time(
        0.0, 0.0, 0.0, 0.0, 0.0, load_s * 1e3, 0.0, extract_s * 1e3, 0.0, 0.0, exec_s * 1e3, 0.0, 0.0,
        version, n_chips, len(active), n_boards, 0, sum(active.values()), sum(active.values()),
        load_active, extract_active, run_active, {}, {}, packets)
    return {"exec_j": float(used.exec_energy_j), "load_j": float(used.loading_energy_j),
            "extract_j": float(used.saving_energy_j)}
