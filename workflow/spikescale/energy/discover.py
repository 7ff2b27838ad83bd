"""Which energy meters this node has, given the machine file's `energy` settings."""

from __future__ import annotations

from spikescale.energy import Meter, Unavailable, nvml, rapl
from spikescale.energy.model import PowerModel

def discover(energy: dict, busy_cores: int) -> tuple[list[Meter], list[Unavailable]]:
    meters: list[Meter] = []
    unavailable: list[Unavailable] = []
    for source, enabled, find in (("rapl", energy["rapl"], rapl.discover), ("nvml", energy["nvml"], nvml.discover)):
        if not enabled:
            unavailable.append(Unavailable(source, "switched off in the machine file (energy." + source + ")"))
            continue
        found, problems = find()
        meters += found
        unavailable += _collapse(problems)
    model = energy.get("power_model") or {}
    if model.get("enabled"):
        meters.append(PowerModel(model["idle_w_per_node"], model["w_per_busy_core"], busy_cores))
    return meters, unavailable


def _collapse(problems: list[Unavailable]) -> list[Unavailable]:
    """One line per reason kind: 'permission denied' for 8 zones is said once."""
    if len(problems) <= 1:
        return problems
    first = problems[0]
    same = [p for p in problems if p.reason.split(" ")[:2] == first.reason.split(" ")[:2]]
    if len(same) == len(problems):
        return [Unavailable(first.source, f"{first.reason} (and {len(problems) - 1} more zone(s) alike)")]
    return problems
