"""A campaign as beNNch-plot reads it: ``python -m spikescale.analysis.bennch_export``.

beNNch-plot (INM-6) plots one CSV per campaign, one row per run, with the column names of
beNNch's NEST timers. This writes that CSV from campaign.h5, so beNNch-plot's users can plot
our results with their tool (`bennchplot.Plot(x_axis=['num_nvp'], data_file=...,
time_scaling=1e3, detailed_timers=False)`). Only successful runs are written. Mapping
(docs/analysis.md has the table):

- rng_seed, num_nodes, tasks_per_node, threads_per_task: the run's seed and shape;
  model_time_sim: simulated model time in ms (beNNch-plot divides by time_scaling = 1e3).
- time_construction_create, time_construction_connect, time_simulate,
  time_communicate_prepare and the detailed spike timers: NEST's own kernel timers (s) of
  the construction and simulation phases; the maximum over ranks (and over threads for
  per-thread timers): a run is as slow as its slowest rank. Empty where this NEST build
  has no such timer (the detailed timers need NEST built with -Dwith-detailed-timers=ON).
- py_time_create, py_time_connect: our phase wall times (s), measured around the calls.
- base_memory, network_memory, init_memory, total_memory: resident memory (KiB, as NEST's
  memory_thisjob) at the end of set-up, connect, presimulation and simulation, summed
  over ranks.
- num_connections: all connections NEST holds, summed over ranks (devices included, as
  NEST's num_connections); local_spike_counter: spikes in the simulation phase, all ranks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from spikescale.analysis.scaling import performance_runs
from spikescale.record import read_attr
from spikescale.load import load_runs

KERNEL_TIMERS = {  # column -> (phase of our record, NEST timer)
    "time_construction_create": ("construction", "time_construction_create"),
    "time_construction_connect": ("construction", "time_construction_connect"),
    "time_simulate": ("simulate", "time_simulate"),
    "time_collocate_spike_data": ("simulate", "time_collocate_spike_data"),
    "time_communicate_spike_data": ("simulate", "time_communicate_spike_data"),
    "time_deliver_spike_data": ("simulate", "time_deliver_spike_data"),
    "time_update": ("simulate", "time_update"),
    "time_communicate_target_data": ("simulate", "time_communicate_target_data"),
    "time_gather_spike_data": ("simulate", "time_gather_spike_data"),
    "time_gather_target_data": ("simulate", "time_gather_target_data"),
    "time_communicate_prepare": ("simulate", "time_communicate_prepare"),
}
# beNNch's memory columns -> the phase (spikescale.phases.NAMES) at whose end ours is read
MEMORY = {"base_memory": "setup", "network_memory": "connect", "init_memory": "presimulate",
          "total_memory": "simulate"}
COLUMNS = ["rng_seed", "num_nodes", "threads_per_task", "tasks_per_node", "model_time_sim", *KERNEL_TIMERS,
           "py_time_create", "py_time_connect", *MEMORY, "num_connections", "local_spike_counter"]
KIB_PER_MB = 1e6 / 1024  # our MB are 10^6 bytes


def bennch_table(campaign_h5: Path) -> pd.DataFrame:
    runs = load_runs(campaign_h5)
    runs = performance_runs(runs)
    runs = runs[runs["status"] == "ok"]
    timers, phases, connections = _read_runs(campaign_h5, list(runs["run_id"]))
    # presimulate timers live in their own group: NEST's construction timers are cumulative
    # and its simulate timers are reset at each Simulate(), so construction and simulate are
    # exactly beNNch's.
    worst = timers.groupby(["run_id", "phase", "timer"])["value_s"].max().to_dict()
    memory = phases.groupby(["run_id", "phase"])["mem_rss_mb"].sum().to_dict()
    rows = []
    for run in runs.itertuples():
        row = {"rng_seed": int(run.seed), "num_nodes": int(run.nodes), "threads_per_task": int(run.threads_per_task),
               "tasks_per_node": int(run.tasks_per_node), "model_time_sim": float(run.t_model_s) * 1000.0,
               "py_time_create": float(run.t_create_s), "py_time_connect": float(run.t_connect_s),
               "local_spike_counter": float(run.n_spikes)}
        for column, key in KERNEL_TIMERS.items():
            row[column] = float(worst.get((run.run_id, *key), np.nan))
        for column, phase in MEMORY.items():
            row[column] = float(memory.get((run.run_id, phase), np.nan)) * KIB_PER_MB
        row["num_connections"] = connections.get(run.run_id, np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _read_runs(campaign_h5: Path, run_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """What the table needs of these runs, in one pass over campaign.h5 that reads nothing
    else (a campaign of 10,000 runs holds some 10^6 attributes): the kernel timers of
    KERNEL_TIMERS and the resident memory of the MEMORY phases, in the long formats of
    load_kernel_timers and load_phases, and the connections NEST holds, summed over ranks."""
    wanted: dict[str, set[str]] = {}
    for phase, timer in KERNEL_TIMERS.values():
        wanted.setdefault(phase, set()).add(timer)
    timers, phases, connections = [], [], {}
    with h5py.File(campaign_h5, "r") as fh:
        for run_id in run_ids:
            ranks = fh[f"runs/{run_id}/ranks"]
            n_connections = []
            for rank, rank_group in ranks.items():
                for phase, names in wanted.items():
                    group = rank_group.get(f"kernel_timers/{phase}")
                    if group is None:
                        continue
                    scalars, per_thread = set(group.attrs), set(group)
                    for timer in sorted(names & scalars):  # not per thread
                        timers.append((run_id, phase, timer, float(read_attr(group, timer))))
                    for timer in sorted(names & per_thread):
                        timers += [(run_id, phase, timer, float(v)) for v in np.atleast_1d(group[timer][()])]
                for phase in MEMORY.values():
                    group = rank_group.get(f"phases/{phase}")
                    if group is not None:
                        phases.append((run_id, int(rank), phase, read_attr(group, "order"),
                                       read_attr(group, "mem_rss_mb")))
                counts = rank_group.get("counts")
                if counts is not None:
                    names = set(counts.attrs)
                    n_connections.append(float(read_attr(counts, "n_connections_local"))
                                         if "n_connections_local" in names else np.nan)
            connections[run_id] = sum(n_connections)
    timers = pd.DataFrame(timers, columns=["run_id", "phase", "timer", "value_s"])
    # ordered as load_phases orders them: the sums over ranks add in the same order
    phases = pd.DataFrame(phases, columns=["run_id", "rank", "phase", "order", "mem_rss_mb"])
    return timers, phases.sort_values(["run_id", "rank", "order"]), connections


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign-h5", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    table = bennch_table(args.campaign_h5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"wrote {len(table)} run(s) in beNNch-plot's columns to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
