"""A power model the user declares for a machine without sensors: modelled, never measured.

P = idle_w_per_node + w_per_busy_core x busy cores of the run on this node, from the user's
own wall-plug measurement (machine file, `energy.power_model`; off by default). The energy
is that power times the elapsed time: it says nothing about what the run really drew, and
every figure derived from it is labelled `modelled`.
"""

from __future__ import annotations

import time

from spikescale.energy import Meter


class PowerModel(Meter):
    source = "model"
    kind = "modelled"
    scope = "node"
    range_uj = None

    def __init__(self, idle_w_per_node: float, w_per_busy_core: float, busy_cores: int, clock=time.monotonic):
        self.idle_w, self.w_per_core, self.busy_cores = idle_w_per_node, w_per_busy_core, busy_cores
        self.clock = clock  # CLOCK_MONOTONIC: the same in every process of the node

    @property
    def watts(self) -> float:
        return self.idle_w + self.w_per_core * self.busy_cores

    def read_uj(self) -> int:
        # A counter like any other: energy since an arbitrary origin (the monotonic clock's).
        return int(self.clock() * self.watts * 1e6)

    def power_w(self) -> float | None:
        return self.watts

    def describe(self) -> dict:
        return {**super().describe(), "idle_w_per_node": self.idle_w, "w_per_busy_core": self.w_per_core,
                "busy_cores": self.busy_cores}
