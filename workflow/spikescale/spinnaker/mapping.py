"""What sPyNNaker's mapping made of the network: read from sPyNNaker's own data after a run
(on a board, or on the virtual board of an emulated run: the same partitioning, placement
and routing code).

``summarise`` gives the figures a user asks first (chips, cores, neurons per core, routing
entries) and ``cores`` one row per application core: what it holds, where it sits and on how
many chips its spikes are routed (for the packet counts of the energy model).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np

# sPyNNaker's machine vertices of a neuron population (split into neuron and synapse cores
# since sPyNNaker 7) and of a Poisson source; anything else placed is a system core
NEURON_CORE, SYNAPSE_CORE, SOURCE_CORE = "neurons", "synapses", "poisson_source"
_KINDS = {"PopulationNeuronsMachineVertex": NEURON_CORE, "PopulationMachineVertex": NEURON_CORE,
          "PopulationSynapsesMachineVertexLead": SYNAPSE_CORE, "PopulationSynapsesMachineVertexShared": SYNAPSE_CORE,
          "SpikeSourcePoissonMachineVertex": SOURCE_CORE}


def core_kind(vertex) -> str:
    return _KINDS.get(type(vertex).__name__, "system")


def cores(view) -> list[dict]:
    """One row per placed core: kind, application vertex label, atoms (lo, hi), chip,
    processor, and the chips on which the core's spikes have a routing entry."""
    route_chips: dict = {}
    by_partition = view.get_routing_table_by_partition()
    for x, y in by_partition.get_routers():
        for (source, _partition), _entry in (by_partition.get_entries_for_router(x, y) or {}).items():
            route_chips.setdefault(source, set()).add((x, y))
    rows = []
    for pl in view.iterate_placemements():
        v = pl.vertex
        kind = core_kind(v)
        row = {"kind": kind, "x": pl.x, "y": pl.y, "p": pl.p, "label": str(getattr(v.app_vertex, "label", "") or v.label),
               "lo_atom": -1, "hi_atom": -1, "route_chips": len(route_chips.get(v, ())),
               "route_chip_list": sorted(route_chips.get(v, ()))}
        if kind != "system":
            row["lo_atom"], row["hi_atom"] = int(v.vertex_slice.lo_atom), int(v.vertex_slice.hi_atom)
        rows.append(row)
    return rows


def summarise(view, rows: list[dict]) -> dict:
    """Run-level mapping figures (scalars, for the record's attributes and runs.csv)."""
    app = [r for r in rows if r["kind"] != "system"]
    neuron_sizes = np.array([r["hi_atom"] - r["lo_atom"] + 1 for r in rows if r["kind"] == NEURON_CORE])
    uncompressed = view.get_uncompressed()
    entries = [t.number_of_entries for t in uncompressed.routing_tables]
    kinds = Counter(r["kind"] for r in rows)
    machine = view.get_machine()
    return {
        "spinnaker_chips_used": len({(r["x"], r["y"]) for r in app}),
        "spinnaker_cores_used": len(app),
        "spinnaker_neuron_cores": kinds[NEURON_CORE],
        "spinnaker_synapse_cores": kinds[SYNAPSE_CORE],
        "spinnaker_source_cores": kinds[SOURCE_CORE],
        "spinnaker_system_cores": kinds["system"],
        "spinnaker_neurons_per_core_max": int(neuron_sizes.max()) if neuron_sizes.size else 0,
        "spinnaker_neurons_per_core_mean": float(neuron_sizes.mean()) if neuron_sizes.size else 0.0,
        "spinnaker_routing_entries": int(sum(entries)),
        "spinnaker_routing_entries_max_per_chip": int(max(entries)) if entries else 0,
        "spinnaker_machine_chips": int(machine.n_chips),
        "spinnaker_boards": max(1, len(machine.ethernet_connected_chips)),
        "spinnaker_time_scale_factor": float(view.get_time_scale_factor()),
    }


def ring_buffer_shifts(populations) -> np.ndarray:
    """sPyNNaker's ring-buffer left shift per population and synapse type (excitatory,
    inhibitory): the weight of a synapse onto population p is stored as an integer in units
    of 2^(shift - 15) nA (PopulationVertex.get_ring_buffer_shifts / get_weight_scales)."""
    return np.array([pop._vertex.get_ring_buffer_shifts()[:2] for pop in populations], dtype=np.int64)


def max_delay_steps(populations) -> int:
    """The longest delay (steps) the mapping supports onto every population: the delay slots
    of its cores times the delay extension's stages plus one (sPyNNaker raises beyond it)."""
    from spynnaker.pyNN.models.utility_models.delays.delay_extension_vertex import DelayExtensionVertex

    return int(min(pop._vertex.splitter.max_support_delay() * (DelayExtensionVertex.MAX_SLOTS + 1)
                   for pop in populations))


def sdram_bytes(view, n_steps: int) -> int:
    """SDRAM the mapped application cores need for a run of n_steps (sPyNNaker's own plan):
    what loading writes onto the board, recording space included."""
    return int(sum(pl.vertex.sdram_required.get_total_sdram(n_steps) for pl in view.iterate_placemements()
                   if core_kind(pl.vertex) != "system"))


def category_timers_s(reports_dir: Path) -> dict:
    """sPyNNaker's own time per stage (its global provenance database): mapping, loading,
    running, ... in seconds, summed over the runs of this process."""
    found = sorted(Path(reports_dir).rglob("global_provenance.sqlite3"))
    if not found:
        return {}
    with sqlite3.connect(found[-1]) as db:
        rows = db.execute("SELECT category, SUM(time_taken) FROM category_timer_provenance GROUP BY category").fetchall()
    names = {"Mapping Stage": "mapping", "Loading Stage": "loading", "Running Stage": "running",
             "In Setup": "setup", "Turning on Machine": "get_machine", "Shutting down": "shutdown",
             "Waiting": "waiting", "In run other": "run_other", "Resetting": "resetting"}
    return {f"spynnaker_{names.get(c, c.lower().replace(' ', '_'))}_s": float(ms or 0) / 1000.0 for c, ms in rows}
