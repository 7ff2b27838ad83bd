"""Run-level energy figures from the nodes' meters (the runs.csv columns).

Which meters count: the best kind present, measured before accounted before modelled, never
a mix. energy_<phase>_j sums that kind's meters over scopes (packages, DRAM, GPUs) and nodes;
esyn_uj = energy_sim_j / synaptic events x 1e6 (microjoules per synaptic event, the
community's figure of merit). With an idle measurement, idle_power_w is the same meters'
power before the network existed, and energy_sim_net_j the simulation energy above it.
"""

from __future__ import annotations

import json

from spikescale.energy import KINDS, as_text
from spikescale.phases import BY_NAME, CONSTRUCTION


def _energy_column(phase: str) -> str:
    """The energy column beside a phase's wall-time column: t_sim_s -> energy_sim_j."""
    return "energy_" + BY_NAME[phase].column.removeprefix("t_").removesuffix("_s") + "_j"


# runs.csv's energy columns -> the phases each sums (spikescale.phases)
PHASES = {"energy_construct_j": CONSTRUCTION,
          **{_energy_column(phase): (phase,) for phase in ("presimulate", "simulate")}}


def energy_summary(ranks: list[dict], synaptic_events: float | None) -> dict:
    nodes = [r["energy"] for r in ranks if "energy" in r]
    meters = [(node["attrs"]["node"], scope, tree["attrs"]) for node in nodes
              for scope, tree in node.get("meters", {}).items() if scope != "attrs"]
    unavailable = sorted({f"{source}: {reason}" for node in nodes
                          for source, reason in json.loads(as_text(node["attrs"].get("unavailable", "[]")))})
    out = {"energy_sim_j": None, "energy_construct_j": None, "energy_presim_j": None, "esyn_uj": None,
           "idle_power_w": None, "energy_sim_net_j": None, "energy_kind": "",
           "energy_unavailable": "; ".join(unavailable)}
    chosen = []
    # A platform's own model (an emulated SpiNNaker board) is what the run is about; the host's
    # meters measured the emulator and stay in the record only.
    platform = [(node, scope, attrs) for node, scope, attrs in meters if as_text(attrs.get("covers", "")) == "platform"]
    if platform:
        out["energy_kind"] = as_text(platform[0][2]["kind"])
        out["energy_source"] = f"{out['energy_kind']}: " + "; ".join(as_text(a.get("description", a["source"]))
                                                                      for _, _, a in platform)
        return _phase_energies(out, platform, synaptic_events)
    for kind in KINDS:
        chosen = [(node, scope, attrs) for node, scope, attrs in meters if as_text(attrs["kind"]) == kind]
        if chosen:
            out["energy_kind"] = kind
            break
    if not chosen:
        out["energy_source"] = "unavailable: " + ("; ".join(unavailable) or "no energy meter on any node")
        return out
    n_nodes = len({node for node, _, _ in chosen})
    sources = sorted({f"{as_text(attrs['source'])} {scope}" for _, scope, attrs in chosen})
    out["energy_source"] = f"{out['energy_kind']}: {', '.join(sources)} on {n_nodes} node(s)"
    return _phase_energies(out, chosen, synaptic_events)


def _phase_energies(out: dict, chosen: list, synaptic_events: float | None) -> dict:
    for column, phases in PHASES.items():
        keys = [f"energy_{phase}_j" for phase in phases]
        if all(key in attrs for _, _, attrs in chosen for key in keys):
            out[column] = float(sum(attrs[key] for _, _, attrs in chosen for key in keys))
    if out["energy_sim_j"] is not None and synaptic_events:
        out["esyn_uj"] = out["energy_sim_j"] / synaptic_events * 1e6
    if all("energy_idle_j" in attrs and attrs.get("t_idle_s") for _, _, attrs in chosen):
        idle_w = [attrs["energy_idle_j"] / attrs["t_idle_s"] for _, _, attrs in chosen]
        out["idle_power_w"] = float(sum(idle_w))
        if all("energy_simulate_j" in attrs and "t_simulate_s" in attrs for _, _, attrs in chosen):
            # each meter's own phase time (between its marks), not the harness's t_sim_s
            out["energy_sim_net_j"] = float(sum(attrs["energy_simulate_j"] - w * attrs["t_simulate_s"]
                                                for w, (_, _, attrs) in zip(idle_w, chosen)))
    return out
