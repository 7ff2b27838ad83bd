"""A campaign as beNNch-plot reads it: ``python -m analysis.bennch_export``.

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

from analysis.scaling import performance_runs
from spikescale.store import load_kernel_timers, load_phases, load_runs

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
MEMORY = {"base_memory": "setup", "network_memory": "connect", "init_memory": "presimulate",
          "total_memory": "simulate"}
COLUMNS = ["rng_seed", "num_nodes", "threads_per_task", "tasks_per_node", "model_time_sim", *KERNEL_TIMERS,
           "py_time_create", "py_time_connect", *MEMORY, "num_connections", "local_spike_counter"]
KIB_PER_MB = 1e6 / 1024  # our MB are 10^6 bytes


def bennch_table(campaign_h5: Path) -> pd.DataFrame:
    runs = load_runs(campaign_h5)
    runs = performance_runs(runs)
    runs = runs[runs["status"] == "ok"]
    timers = load_kernel_timers(campaign_h5)
    phases = load_phases(campaign_h5)
    # presimulate timers live in their own group: NEST's construction timers are cumulative
    # and its simulate timers are reset at each Simulate(), so construction and simulate are
    # exactly beNNch's.
    worst = timers.groupby(["run_id", "phase", "timer"])["value_s"].max()
    memory = phases.groupby(["run_id", "phase"])["mem_rss_mb"].sum()
    connections = _connections(campaign_h5)
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


def _connections(campaign_h5: Path) -> dict[str, float]:
    """run id -> connections NEST holds, summed over ranks (one pass over the file)."""
    with h5py.File(campaign_h5, "r") as fh:
        return {run_id: sum(float(r["counts"].attrs.get("n_connections_local", np.nan))
                            for r in run["ranks"].values() if "counts" in r)
                for run_id, run in fh["runs"].items()}


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
