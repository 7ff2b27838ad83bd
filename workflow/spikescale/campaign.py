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
    """A validated campaign: the four configuration parts with defaults filled in.

    software: variant name -> that software file's part (backend -> entry). A variant is a
    software file of config/software/, named by the file; an experiment names one (its runs'
    ids carry no variant, as before variants existed) or a list of them (docs/comparing.md).
    files: part -> the path it was read from; with several variants "software" -> {variant: path}
    (one variant: its path, as before, so that a campaign's provenance and hashes stay).
    """

    experiment: dict
    model: dict
    machine: dict
    software: dict
    files: dict

    @property
    def name(self) -> str:
        return self.experiment["name"]

    @property
    def variants(self) -> list[str]:
        """The software variants, in the experiment's order."""
        return list(self.software)

    @property
    def single_software(self) -> bool:
        """The experiment names one software file (a name, not a list)."""
        return isinstance(self.experiment["software"], str)

    def variants_of(self, backend: str) -> list[str]:
        """The variants with an entry for a backend: each runs it."""
        return [variant for variant, part in self.software.items() if backend in part]

    def entry(self, backend: str, variant: str) -> dict:
        """The software entry of a backend in one variant."""
        return self.software[variant][backend]

    def software_file(self, variant: str) -> str:
        files = self.files["software"]
        return files if isinstance(files, str) else files[variant]

    def resolved(self) -> dict:
        """Everything that defines the campaign, for provenance and hashing. A single-software
        campaign resolves as it did before variants existed, so its hashes stay."""
        software = self.software[self.variants[0]] if self.single_software else self.software
        return {"experiment": self.experiment, "model": self.model, "machine": self.machine, "software": software}


class ResourceCounts:
    """What follows from a resource shape (nodes, tasks_per_node, threads_per_task fields): for
    a planned run (spikescale.plan.Run) and a cost model's configuration
    (spikescale.perf_model.Configuration) alike."""

    nodes: int
    tasks_per_node: int
    threads_per_task: int

    @property
    def ranks(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def virtual_processes(self) -> int:
        return self.ranks * self.threads_per_task


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
