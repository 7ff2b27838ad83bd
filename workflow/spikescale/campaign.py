"""A validated campaign and what both its checks (spikescale.config) and its plan
(spikescale.plan) read off it: the resource shapes of its axes and the model size at each.

It lives apart from both so that the checks can ask what the plan will run, and the plan
can take a checked campaign, without either importing the other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Campaign:
    """A validated campaign: the four configuration parts with defaults filled in."""

    experiment: dict
    model: dict
    machine: dict
    software: dict
    files: dict  # part -> path it was read from

    @property
    def name(self) -> str:
        return self.experiment["name"]

    def resolved(self) -> dict:
        """Everything that defines the campaign, for provenance and hashing."""
        return {"experiment": self.experiment, "model": self.model, "machine": self.machine, "software": self.software}


def resource_shapes(experiment: dict) -> list[tuple[int, int, int]]:
    """Every (nodes, tasks_per_node, threads_per_task) of the experiment's axes."""
    axes = experiment["axes"]
    return list(itertools.product(axes["nodes"], axes["tasks_per_node"], axes["threads_per_task"]))


def model_for_shape(experiment: dict, model: dict, shape: tuple[int, int, int]) -> tuple[float, float]:
    """(n_scaling, k_scaling) for one resource shape: fixed for strong scaling, grown by
    the experiment's rule for weak scaling."""
    if experiment["scaling"] != "weak":
        return float(model["n_scaling"]), float(model["k_scaling"])
    nodes, tasks, threads = shape
    rule = experiment["weak_scaling"]
    units = {"node": nodes, "task": nodes * tasks, "virtual_process": nodes * tasks * threads}[rule["unit"]]
    return round(float(rule["n_scaling_per_unit"]) * units, 12), float(model["k_scaling"])
