"""Energy of the simulation phase at the power outlet: the metered part plus what the machine
file declares the meters do not see (docs/energy.md#energy-at-the-power-outlet).

    energy_outlet_sim_j = (energy_sim_j / psu_efficiency
                           + (network_w_per_node + storage_w_per_node) x nodes x t
                           + idle_nodes_held x idle_node_w x t) x pue

energy_sim_j is the run's own (measured, accounted or modelled: its energy_kind), the
factors and watts are declared (machine file energy.outlet, with their source), the sum is
arithmetic. t is the simulation phase's wall time t_sim_s; for an emulated platform it is the
board's modelled time t_sim_modelled_s, the time its modelled energy is for.

Computed when the campaign is collected (spikescale.store), from the machine file as it is
then: a declaration corrected later applies at the next collect, without running a run again
(it is not part of a run's context, spikescale.jobs.run_context).
"""

from __future__ import annotations

import math

COLUMNS = ("energy_outlet_sim_j", "esyn_outlet_uj", "energy_outlet_source")
# The declared watts per node the run uses (energy.outlet in the machine schema).
PER_NODE_W = ("network_w_per_node", "storage_w_per_node")


def _number(value) -> float | None:
    """A runs.csv cell as a finite number, or None where it is empty or not a number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _truthy(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _g(value: float) -> str:
    return f"{value:.6g}"


def outlet_energy(row: dict, outlet: dict | None, machine_file: str) -> tuple:
    """(energy_outlet_sim_j, esyn_outlet_uj, energy_outlet_source) of one runs.csv row; the
    numbers are "" where the figure is unavailable, and the source then says why."""
    if not outlet:
        return "", "", f"unavailable: machine file {machine_file} declares no energy.outlet"
    node_j = _number(row.get("energy_sim_j"))
    if node_j is None:
        source = str(row.get("energy_source") or "")
        why = str(row.get("energy_unavailable") or "") or (source.removeprefix("unavailable: ")
                                                            if source.startswith("unavailable: ") else "")
        if row.get("status") not in (None, "", "ok"):
            why = f"the run failed in phase {row.get('failed_phase') or '?'}" + (f"; {why}" if why else "")
        return "", "", f"unavailable: no measured energy of the simulation phase ({why or 'no reason recorded'})"
    emulated = _truthy(row.get("emulated"))
    time_column = "t_sim_modelled_s" if emulated else "t_sim_s"
    t_s = _number(row.get(time_column))
    if t_s is None:
        return "", "", f"unavailable: no {time_column} to hold the declared watts over"
    nodes = int(_number(row.get("nodes")) or 1)

    per_node_w = sum(float(outlet.get(key, 0.0)) for key in PER_NODE_W)
    idle_w = int(outlet.get("idle_nodes_held", 0)) * float(outlet.get("idle_node_w", 0.0))
    energy_j = (node_j / outlet["psu_efficiency"] + (per_node_w * nodes + idle_w) * t_s) * outlet["pue"]
    synaptic_events = _number(row.get("synaptic_events"))
    esyn_uj = energy_j / synaptic_events * 1e6 if synaptic_events else ""
    return energy_j, esyn_uj, _source(row, outlet, machine_file, node_j, nodes, time_column, t_s, emulated)


def _source(row, outlet, machine_file, node_j, nodes, time_column, t_s, emulated) -> str:
    """What was measured (or accounted, or modelled), which declarations were added, and
    where they come from: one line, starting with the kind of the node part."""
    kind = str(row.get("energy_kind") or "measured")
    metered = str(row.get("energy_source") or "").removeprefix(f"{kind}: ")
    if emulated:
        head = f"modelled: the emulated platform's modelled energy {_g(node_j)} J ({metered})"
    elif kind == "accounted":
        head = f"accounted (SLURM) node energy {_g(node_j)} J ({metered}), not measured by the run"
    else:
        head = f"{kind} node energy {_g(node_j)} J ({metered})"
    added, missing = [], []
    for key in PER_NODE_W:
        (added.append(f"{key.removesuffix('_w_per_node')} {_g(outlet[key])} W x {nodes} node(s)") if key in outlet
         else missing.append(key))
    if outlet.get("idle_nodes_held"):
        added.append(f"{outlet['idle_nodes_held']} idle held node(s) x {_g(outlet['idle_node_w'])} W")
    elif "idle_nodes_held" not in outlet:
        missing.append("idle_nodes_held")  # declared 0: nothing to add, and nothing left unsaid
    line = f"{head} / psu_efficiency {_g(outlet['psu_efficiency'])}"
    if added:
        line += f" + declared {', '.join(added)} over {time_column} {_g(t_s)} s"
    line += f", x pue {_g(outlet['pue'])}"
    if missing:
        line += f"; not declared (0 W): {', '.join(missing)}"
    return f"{line}; declared in machine file {machine_file} energy.outlet, source: {outlet['source']}"


def outlet_energies(rows: list[dict], machine: dict | None, machine_file: str) -> list[tuple]:
    """outlet_energy of each row, in order, by the machine file's energy.outlet as it is now."""
    if machine is None:
        return [("", "", "unavailable: collected without the campaign's configuration (no machine file)")] * len(rows)
    outlet = (machine.get("energy") or {}).get("outlet")
    return [outlet_energy(row, outlet, machine_file) for row in rows]
