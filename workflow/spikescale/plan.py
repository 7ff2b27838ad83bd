"""Expand a campaign into its run table. Each run gets a stable id.

The id is a hash of the run's canonical parameters (what is simulated, with which
resources, on which machine), so the same configuration always gives the same ids, adding
a seed or a resource shape only adds runs, and Snakemake, whose targets are the run files
named by these ids, re-runs nothing that is already there.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass

from spikescale.campaign import Campaign, ResourceCounts, model_for_shape, resource_shapes

# The model settings that define a run (seeds are expanded into runs).
MODEL_KEYS = ("model", "n_scaling", "k_scaling", "drive", "t_presim_ms", "t_sim_ms", "dt_ms",
              "thalamic_input", "record_spikes")
ID_VERSION = 1  # bump only if the canonical form below changes


@dataclass(frozen=True)
class Run(ResourceCounts):
    run_id: str
    campaign: str
    backend: str
    machine: str
    model: str
    n_scaling: float
    k_scaling: float
    drive: str
    t_presim_ms: float
    t_sim_ms: float
    dt_ms: float
    thalamic_input: bool
    record_spikes: bool
    seed: int
    repetition: int
    nodes: int
    tasks_per_node: int
    threads_per_task: int
    # A deliberately wrong model (spikescale.models.pd14.derived.derive). Left out of the spec and the
    # id while it is 1, so that the ids and specs of correct runs never change.
    weight_factor: float = 1.0
    # The software variant (a software file's name) of a campaign that names several. Empty in a
    # campaign with one software file: left out of the spec and the id then, so that the ids of
    # campaigns from before variants stay (the runs.csv column `variant` names the file anyway).
    variant: str = ""

    def spec(self) -> dict:
        # what asdict(self) gives, without its recursive copy: every field is a scalar (a
        # 10,000-run campaign asks for some 50,000 specs while Snakemake plans it)
        spec = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if spec["weight_factor"] == 1.0:
            del spec["weight_factor"]
        if not spec["variant"]:
            del spec["variant"]
        return spec

    def spec_json(self) -> str:
        return json.dumps(self.spec(), sort_keys=True)


def canonical(params: dict) -> str:
    """Canonical JSON of a run's defining parameters: sorted keys, floats via repr, so
    0.1 and 0.10 in YAML give the same id."""
    norm = {k: (float(v) if isinstance(v, float) else v) for k, v in params.items()}
    return json.dumps({"id_version": ID_VERSION, **norm}, sort_keys=True, separators=(",", ":"))


def make_run_id(params: dict) -> str:
    digest = hashlib.sha256(canonical(params).encode()).hexdigest()[:12]
    p = params
    # A readable prefix for people browsing results/; the hash makes it unique.
    return f"{run_id_prefix(p['backend'], p.get('variant', ''), p['nodes'], p['tasks_per_node'], p['threads_per_task'])}" \
           f"seed{p['seed']}-r{p['repetition']}-{digest}"


def run_id_prefix(backend: str, variant: str, nodes: int, tasks_per_node: int, threads_per_task: int) -> str:
    """The start of the ids of one backend x variant x resource shape: what puts a run into
    its rule (workflow/rules/simulate.smk), and so into a SLURM job array of its own."""
    variant_part = f"{variant}-" if variant else ""
    return f"{backend}-{variant_part}n{nodes}x{tasks_per_node}x{threads_per_task}-"


# What follows the prefix in every id: the rules match it exactly, so that no variant's name
# can make one rule's ids look like another's.
RUN_ID_TAIL = r"seed[0-9]+-r[0-9]+-[0-9a-f]{12}"


def _make_run(c: Campaign, campaign: str, backend: str, shape: tuple[int, int, int], n_scaling: float,
              k_scaling: float, seed: int, repetition: int, record_spikes: bool, weight_factor: float,
              variant: str = "") -> Run:
    params = {k: c.model[k] for k in MODEL_KEYS}
    params.update(n_scaling=n_scaling, k_scaling=k_scaling, backend=backend, machine=c.machine["name"],
                  seed=int(seed), repetition=repetition, nodes=shape[0], tasks_per_node=shape[1],
                  threads_per_task=shape[2], record_spikes=record_spikes)
    for key in ("t_presim_ms", "t_sim_ms", "dt_ms"):
        params[key] = float(params[key])
    if weight_factor != 1.0:
        params["weight_factor"] = float(weight_factor)
    if variant:
        params["variant"] = variant
    return Run(run_id=make_run_id(params), campaign=campaign, **params)


def run_variants(c: Campaign, backend: str) -> list[str]:
    """The variant of each of a backend's runs: '' for a campaign with one software file."""
    return [""] if c.single_software else c.variants_of(backend)


def plan_runs(c: Campaign) -> list[Run]:
    """The campaign's runs, ordered by backend, software variant, resources, seed,
    repetition; then its validation runs (spikes recorded) if the experiment asks for
    validation and the model's own runs do not record spikes already."""
    runs = []
    exp, model = c.experiment, c.model
    weight_factor = float(model.get("weight_factor", 1.0))
    for backend in exp["backends"]:
        for variant in run_variants(c, backend):
            for shape in resource_shapes(exp):
                n_scaling, k_scaling = model_for_shape(exp, model, shape)
                for seed in model["seeds"]:
                    for rep in range(exp["repetitions"]):
                        runs.append(_make_run(c, c.name, backend, shape, n_scaling, k_scaling, seed, rep,
                                              bool(model["record_spikes"]), weight_factor, variant))
    if "validation" in exp and not model["record_spikes"]:
        shape = (1, 1, exp["validation"]["threads_per_task"])
        for backend in exp["backends"]:
            for variant in run_variants(c, backend):
                for seed in model["seeds"]:
                    runs.append(_make_run(c, c.name, backend, shape, float(model["n_scaling"]),
                                          float(model["k_scaling"]), seed, 0, True, weight_factor, variant))
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids), "run ids must be unique"
    return runs


def reference_key(c: Campaign) -> str:
    """Name of the NEST reference ensemble of a validated campaign: the model (never its
    deliberate errors), the reference seeds, the shape and the machine. Campaigns that
    agree on these share one ensemble, computed once."""
    v, m = c.experiment["validation"], c.model
    params = {k: m[k] for k in MODEL_KEYS if k != "record_spikes"}
    params.update(seeds=sorted(v["reference_seeds"]), threads_per_task=v["threads_per_task"],
                  machine=c.machine["name"])
    digest = hashlib.sha256(canonical(params).encode()).hexdigest()[:10]
    return f"pd14-n{float(m['n_scaling']):g}-k{float(m['k_scaling']):g}-{m['drive']}-{digest}"


def reference_runs(c: Campaign) -> list[Run]:
    """The NEST runs of the reference ensemble (spikes recorded, correct model)."""
    if "validation" not in c.experiment:
        return []
    v, m = c.experiment["validation"], c.model
    return [_make_run(c, "reference", "nest", (1, 1, v["threads_per_task"]), float(m["n_scaling"]),
                      float(m["k_scaling"]), seed, 0, True, 1.0) for seed in v["reference_seeds"]]


def write_plan_csv(runs: list[Run], path) -> None:
    fields = list(Run.__dataclass_fields__)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for run in runs:
            writer.writerow(run.spec())


def main(argv=None) -> int:
    """Write plan.csv and the resolved configuration of a campaign (the plan rule)."""
    import argparse
    from pathlib import Path

    from spikescale.config import load_campaign

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--experiment", required=True, help="experiment name in <config-dir>/experiment/, or a path")
    parser.add_argument("--config-dir", required=True, type=Path)
    parser.add_argument("--out-plan", required=True, type=Path)
    parser.add_argument("--out-config", required=True, type=Path)
    args = parser.parse_args(argv)
    campaign = load_campaign(args.experiment, args.config_dir)
    runs = plan_runs(campaign)
    args.out_plan.parent.mkdir(parents=True, exist_ok=True)
    write_plan_csv(runs, args.out_plan)
    args.out_config.write_text(json.dumps({"files": campaign.files, **campaign.resolved()}, indent=2, sort_keys=True))
    print(f"planned {len(runs)} run(s) of campaign {campaign.name}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
