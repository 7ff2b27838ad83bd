"""Read a campaign back: pandas DataFrames from campaign.h5 or runs.csv (layout:
docs/hdf5-layout.md). The analysis side's door to the data; it needs only h5py, numpy,
pandas and the column declaration, nothing of the run side.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from spikescale.columns import NAMES as RUNS_CSV_COLUMNS


def load_runs(path: str | Path) -> pd.DataFrame:
    """The summary table, one row per run, from campaign.h5 or runs.csv."""
    path = Path(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=True)
    with h5py.File(path, "r") as fh:
        data = {}
        for name, ds in fh["summary"].items():
            values = ds[()]
            if values.dtype.kind == "O":
                values = [v.decode() if isinstance(v, bytes) else v for v in values]
            data[name] = values
    frame = pd.DataFrame(data)
    return frame[[c for c in RUNS_CSV_COLUMNS if c in frame.columns]]


def load_phases(path: str | Path) -> pd.DataFrame:
    """Wall time and memory per run, rank and phase (long format)."""
    rows = []
    with h5py.File(path, "r") as fh:
        for run_id, run in fh["runs"].items():
            for rank, rank_group in run["ranks"].items():
                for phase, group in rank_group["phases"].items():
                    rows.append({"run_id": run_id, "rank": int(rank), "phase": phase,
                                 **{k: group.attrs[k] for k in ("order", "wall_s", "mem_rss_mb", "mem_peak_mb")}})
    frame = pd.DataFrame(rows, columns=["run_id", "rank", "phase", "order", "wall_s", "mem_rss_mb", "mem_peak_mb"])
    return frame.sort_values(["run_id", "rank", "order"]).reset_index(drop=True)


def load_kernel_timers(path: str | Path) -> pd.DataFrame:
    """Every simulator kernel timer per run, rank and phase; thread -1 marks a timer that
    is not per thread (long format, seconds)."""
    rows = []
    with h5py.File(path, "r") as fh:
        for run_id, run in fh["runs"].items():
            for rank, rank_group in run["ranks"].items():
                if "kernel_timers" not in rank_group:
                    continue
                for phase, group in rank_group["kernel_timers"].items():
                    for timer, value in group.attrs.items():
                        rows.append((run_id, int(rank), phase, timer, -1, float(value)))
                    for timer, ds in group.items():
                        for thread, value in enumerate(np.atleast_1d(ds[()])):
                            rows.append((run_id, int(rank), phase, timer, thread, float(value)))
    return pd.DataFrame(rows, columns=["run_id", "rank", "phase", "timer", "thread", "value_s"])


def load_spikes(path: str | Path, run_id: str) -> pd.DataFrame:
    """Recorded spikes of one run (population, sender, time_ms), from a run file or
    campaign.h5. Empty where the run did not record spikes."""
    rows = []
    with h5py.File(path, "r") as fh:
        run = fh[f"runs/{run_id}"] if "runs" in fh else fh
        for rank_group in run["ranks"].values():
            if "spikes" not in rank_group:
                continue
            for pop, group in rank_group["spikes"].items():
                senders, times = group["senders"][()], group["times_ms"][()]
                rows.append(pd.DataFrame({"population": pop, "sender": senders, "time_ms": times}))
    if not rows:
        return pd.DataFrame({"population": pd.Series(dtype=str), "sender": pd.Series(dtype=np.int64),
                             "time_ms": pd.Series(dtype=float)})
    return pd.concat(rows, ignore_index=True)
