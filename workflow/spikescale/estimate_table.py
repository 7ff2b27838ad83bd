"""python -m spikescale.estimate_table --experiment NAME [--config-dir config]: each backend's
and shape's estimated memory per node and walltime (spikescale.estimate) beside the machine's
limits. A campaign whose runs cannot fit is refused when it loads, with the same figures."""

from __future__ import annotations

import argparse

from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.estimate import estimate_run
from spikescale.plan import plan_runs


def campaign_table(campaign) -> list[dict]:
    """One row per backend and shape of a campaign: the estimates beside the machine's limits."""
    rows, seen = [], set()
    for run in plan_runs(campaign):
        key = (run.backend, run.variant, run.nodes, run.tasks_per_node, run.threads_per_task, run.n_scaling)
        if key in seen:
            continue
        seen.add(key)
        est = estimate_run(run.spec(), campaign.machine, campaign.entry(run.backend, campaign.variants_of(run.backend)[0]))
        rows.append({"backend": run.backend, "variant": run.variant, "nodes": run.nodes,
                     "tasks_per_node": run.tasks_per_node, "threads_per_task": run.threads_per_task,
                     "n_scaling": run.n_scaling, "mem_mb_per_node": est.mem_mb_per_node,
                     "memory_per_node_mb": campaign.machine["memory_per_node_mb"],
                     "walltime_min": None if est.walltime_s is None else est.walltime_s / 60,
                     "walltime_max_min": campaign.machine["walltime_max_min"],
                     "mem_basis": est.mem_basis, "time_basis": est.time_basis})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--config-dir", default="config")
    args = ap.parse_args(argv)
    try:
        campaign = load_campaign(args.experiment, args.config_dir)
    except ConfigError as err:
        print(err)
        return 1
    print(f"{'backend':<11}{'variant':<10}{'shape':<10}{'scale':>6}{'memory/node MB':>16}{'limit':>9}"
          f"{'walltime min':>14}{'limit':>7}")
    bases = {}
    for r in campaign_table(campaign):
        mem = "unknown" if r["mem_mb_per_node"] is None else f"{r['mem_mb_per_node']:,.0f}"
        wall = "unknown" if r["walltime_min"] is None else f"{r['walltime_min']:,.1f}"
        shape = f"{r['nodes']}x{r['tasks_per_node']}x{r['threads_per_task']}"
        print(f"{r['backend']:<11}{r['variant'] or '-':<10}{shape:<10}{r['n_scaling']:>6g}{mem:>16}"
              f"{r['memory_per_node_mb']:>9,}{wall:>14}{r['walltime_max_min']:>7}")
        bases.setdefault(r["backend"], (r["mem_basis"].split("; ", 1)[-1], r["time_basis"].split("; ", 1)[-1]))
    for backend, (mem_basis, time_basis) in bases.items():
        print(f"{backend}: memory from {mem_basis}; time from {time_basis}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
