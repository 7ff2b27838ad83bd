"""Where NEST's simulation time goes, per resource shape, as beNNch-plot draws it:
``python -m spikescale.analysis.phase_breakdown``.

For each NEST series (backend and software variant, model size, drive) and resource shape
(nodes x tasks per node x threads per task), the simulation phase's wall time split into
NEST's own kernel timers of that phase (the record's kernel_timers/simulate, seconds):

- update: time_update, the threads updating their neurons;
- deliver: time_deliver_spike_data, the threads delivering received spikes to their targets;
- communicate: time_gather_spike_data, the master thread gathering this rank's spikes and
  exchanging them between ranks (it contains time_collocate_spike_data, packing the send
  buffers, and time_communicate_spike_data, the MPI exchange; both are in the table);
- synchronize: time_omp_synchronization_simulation, the threads waiting at the barrier after
  the update (imbalance between threads);
- other: the rest of t_sim (the simulate phase's wall time): NEST's loop overhead, its
  Prepare and Cleanup, and our harness's call.

These timers exist only in a NEST built with -Dwith-detailed-timers=ON (`make nest-mpi`);
the PyPI wheel has none of them, so its runs' bars show t_sim unresolved, and the figure and
the table's `note` say so.

Aggregation (docs/analysis.md, "Phase breakdown"): a per-thread timer is averaged over the
rank's threads (every thread runs deliver, update and the timed barrier each cycle, then
waits, untimed, while the master gathers, so per thread deliver + update + synchronize +
communicate ~ NEST's time_simulate; the mean keeps that sum, a maximum over threads would
add the slowest thread's update to another's wait); then each part is averaged over ranks, as beNNch's
analysis averages its per-rank timer files, and t_sim is the mean over ranks
(t_sim_s_rank_mean) to match. Per shape: the mean over seeds and repetitions of the ok,
undisturbed performance runs (disturbed runs are counted in n_runs_disturbed, not averaged).
The data flow one way: runs.csv and campaign.h5, read through spikescale.load's layout.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from spikescale.analysis import style
from spikescale.analysis.cli import describe
from spikescale.analysis.plots import save
from spikescale.analysis.scaling import SHAPE, averaged, is_disturbed, ok_runs, shape_label
from spikescale.load import load_runs


@dataclass(frozen=True)
class Part:
    name: str  # the table's column is <name>_s
    label: str
    timer: str  # NEST's kernel timer (record: kernel_timers/simulate)
    color: str


# Stacked bottom to top in this order (beNNch-plot's update, deliver, communicate), "other" last.
PARTS = (
    Part("update", "update (neurons)", "time_update", style.TOL_BRIGHT[0]),
    Part("deliver", "deliver (spikes to targets)", "time_deliver_spike_data", style.TOL_BRIGHT[2]),
    Part("communicate", "communicate (gather spike data: collocate + MPI)", "time_gather_spike_data",
         style.TOL_BRIGHT[1]),
    Part("synchronize", "synchronize (threads' barrier wait)", "time_omp_synchronization_simulation",
         style.TOL_BRIGHT[3]),
)
# In the table beside the parts, not stacked: communicate's two pieces and NEST's own total.
DETAIL_TIMERS = {"collocate_s": "time_collocate_spike_data", "communicate_spike_data_s": "time_communicate_spike_data",
                 "nest_simulate_s": "time_simulate"}
OTHER_COLOR = style.TOL_BRIGHT[6]
PROBE = "time_update"  # present exactly when NEST has its detailed timers (backends/nest.py)
NO_DETAILED_NOTE = "no detailed timers: NEST built without -Dwith-detailed-timers (as the PyPI wheel is)"
SERIES = ["backend", "n_scaling", "k_scaling", "drive"]
COLUMNS = [*SERIES, *SHAPE, "shape", "virtual_processes", "detailed_timers", "n_runs", "n_runs_disturbed",
           "t_sim_s", *(f"{p.name}_s" for p in PARTS), "other_s", *DETAIL_TIMERS, "note"]
_WANTED = {p.timer for p in PARTS} | set(DETAIL_TIMERS.values())


def simulate_timers(campaign_h5: Path, run_ids: list[str]) -> pd.DataFrame:
    """The simulate phase's kernel timers of these runs, per rank and thread, in
    load_kernel_timers' long format (thread -1: a timer of the master thread only); read in
    one pass that touches nothing else of the campaign."""
    rows = []
    with h5py.File(campaign_h5, "r") as fh:
        for run_id in run_ids:
            for rank, rank_group in fh[f"runs/{run_id}/ranks"].items():
                group = rank_group.get("kernel_timers/simulate")
                if group is None:
                    continue
                for timer in _WANTED & set(group.attrs):
                    rows.append((run_id, int(rank), timer, -1, float(group.attrs[timer])))
                for timer in _WANTED & set(group):
                    rows += [(run_id, int(rank), timer, thread, float(v))
                             for thread, v in enumerate(np.atleast_1d(group[timer][()]))]
    return pd.DataFrame(rows, columns=["run_id", "rank", "timer", "thread", "value_s"])


def per_run(timers: pd.DataFrame) -> pd.DataFrame:
    """One row per run, one column per timer: the mean over threads, then over ranks."""
    if timers.empty:
        return pd.DataFrame(columns=sorted(_WANTED))
    per_rank = timers.groupby(["run_id", "rank", "timer"])["value_s"].mean()
    return per_rank.groupby(["run_id", "timer"]).mean().unstack("timer")


def _flag(value, has_probe: bool) -> bool:
    """runs.csv's nest_detailed_timers; where empty (a record from before the column), whether
    the record has the probe timer."""
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    return has_probe


def phase_breakdown_table(runs: pd.DataFrame, campaign_h5: Path, include_disturbed: bool = False) -> pd.DataFrame:
    """One row per NEST series, resource shape and detailed-timer availability."""
    nest = runs[runs["backend"].astype(str) == "nest"] if "backend" in runs else runs.iloc[0:0]
    ok = ok_runs(nest) if not nest.empty else nest
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = ok.copy()
    timers = per_run(simulate_timers(campaign_h5, list(ok["run_id"])))
    for timer in _WANTED:
        ok[timer] = ok["run_id"].map(timers[timer]) if timer in timers else np.nan
    flags = ok["nest_detailed_timers"] if "nest_detailed_timers" in ok else pd.Series("", index=ok.index)
    ok["detailed_timers"] = [_flag(v, pd.notna(p)) for v, p in zip(flags, ok[PROBE], strict=True)]
    t_sim = pd.to_numeric(ok.get("t_sim_s_rank_mean", ok["t_sim_s"]), errors="coerce")
    ok["t_sim_mean_over_ranks_s"] = t_sim.fillna(pd.to_numeric(ok["t_sim_s"], errors="coerce"))

    rows = []
    for key, group in ok.groupby([*SERIES, *SHAPE, "detailed_timers"], sort=True):
        used = averaged(group, include_disturbed)
        row = dict(zip([*SERIES, *SHAPE, "detailed_timers"], key, strict=True))
        row["shape"] = shape_label(*(row[s] for s in SHAPE))
        row["virtual_processes"] = int(np.prod([row[s] for s in SHAPE]))
        row["n_runs"] = len(used)
        row["n_runs_disturbed"] = int(is_disturbed(group).sum())
        row["t_sim_s"] = used["t_sim_mean_over_ranks_s"].mean()
        named = 0.0
        for part in PARTS:
            # a part NEST did not time is unavailable (NaN), never 0
            value = used[part.timer].mean() if row["detailed_timers"] else np.nan
            row[f"{part.name}_s"] = value
            named += 0.0 if np.isnan(value) else value
        row["other_s"] = row["t_sim_s"] - named  # without detailed timers: all of t_sim, unresolved
        for column, timer in DETAIL_TIMERS.items():
            row[column] = used[timer].mean()
        row["note"] = "" if row["detailed_timers"] else NO_DETAILED_NOTE
        rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["disturbed_in_means"] = include_disturbed
    return table.sort_values([*SERIES, "virtual_processes", *SHAPE], kind="stable").reset_index(drop=True)


def _bar_labels(table: pd.DataFrame) -> list[str]:
    several = table["backend"].nunique() > 1 or table[["n_scaling", "k_scaling", "drive"]].drop_duplicates().shape[0] > 1
    labels = []
    for row in table.itertuples():
        label = row.shape
        if several:
            label += f"\n{row.backend}\nN x{row.n_scaling:g} {row.drive}"
        if not row.detailed_timers:
            label += "\n(no detailed\ntimers)"
        labels.append(label)
    return labels


def phase_breakdown_figure(table: pd.DataFrame, title: str):
    """(a) the mean simulation time per shape, stacked by part; (b) the same as percent of
    t_sim (beNNch-plot's fractions). Bars of runs without detailed timers are one hatched
    block, t_sim unresolved, and the figure carries the note."""
    style.apply()
    fig, (ax_s, ax_pct) = plt.subplots(1, 2, figsize=(13, 4.8))
    if table.empty:
        for ax in (ax_s, ax_pct):
            ax.text(0.5, 0.5, "no successful NEST runs", ha="center", va="center", transform=ax.transAxes)
        fig.suptitle(title, fontsize=9)
        return fig
    x = np.arange(len(table))
    detailed = table["detailed_timers"].astype(bool).to_numpy()
    t_sim = table["t_sim_s"].to_numpy(dtype=float)
    for ax, scale in ((ax_s, np.ones(len(table))), (ax_pct, 100.0 / t_sim)):
        bottom = np.zeros(len(table))
        for part in PARTS:
            height = np.nan_to_num(table[f"{part.name}_s"].to_numpy(dtype=float)) * scale
            if height.any():
                ax.bar(x, height, bottom=bottom, width=0.6, color=part.color, label=part.label)
            bottom += height
        other = table["other_s"].to_numpy(dtype=float) * scale
        # NEST's parts can add up to a little more than t_sim (the mean over ranks of each
        # part against the mean t_sim): then "other" is negative in the table and not drawn.
        resolved = np.where(detailed, np.clip(other, 0, None), 0)
        if resolved.any():
            ax.bar(x, resolved, bottom=bottom, width=0.6, color=OTHER_COLOR, label="other (t_sim - named parts)")
        if (~detailed).any():
            ax.bar(x[~detailed], other[~detailed], bottom=bottom[~detailed], width=0.6, color="white",
                   edgecolor=OTHER_COLOR, hatch="//", label="t_sim unresolved (no detailed timers)")
        ax.set_xticks(x, _bar_labels(table), fontsize=7)
        ax.set_xlabel("nodes x tasks per node x threads per task")
    ax_s.set_ylabel("wall-clock time of the simulation phase (s)")
    ax_s.set_title("(a) simulation time by NEST kernel timer")
    ax_pct.set_ylabel("share of t_sim (%)")
    ax_pct.set_title("(b) share of the simulation time")
    handles, labels = ax_s.get_legend_handles_labels()
    ax_pct.legend(handles[::-1], labels[::-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    notes = ["measured: NEST's kernel timers, mean over threads then ranks; mean over runs"]
    undetailed = [f"{row.shape} ({row.backend})" for row in table[~detailed].itertuples()]
    if undetailed:
        notes.append(f"{NO_DETAILED_NOTE}: {', '.join(undetailed)} show t_sim only")
    disturbed = int(table["n_runs_disturbed"].sum())
    if disturbed:
        notes.append(f"{disturbed} disturbed run(s) " + ("included in" if table.attrs.get("disturbed_in_means")
                                                          else "left out of") + " the means")
    fig.suptitle(title, fontsize=9)
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, ha="left", va="bottom", gid="phase-breakdown-notes")
    fig.tight_layout(rect=(0, 0.03 * len(notes), 1, 1))
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path, help="runs.csv of the campaign")
    parser.add_argument("--campaign-h5", required=True, type=Path, help="campaign.h5 of the campaign (kernel timers)")
    parser.add_argument("--table", required=True, type=Path)
    parser.add_argument("--png", required=True, type=Path)
    parser.add_argument("--pdf", type=Path)
    parser.add_argument("--include-disturbed", action="store_true",
                        help="average disturbed runs too (default: left out, counted in n_runs_disturbed)")
    args = parser.parse_args(argv)
    runs = load_runs(args.runs)
    table = phase_breakdown_table(runs, args.campaign_h5, include_disturbed=args.include_disturbed)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False, float_format="%.6g")
    save(phase_breakdown_figure(table, describe(runs) + " | NEST phase breakdown"), args.png, args.pdf)
    print(table.to_string(index=False, columns=["backend", "shape", "detailed_timers", "n_runs", "t_sim_s",
                                                *(f"{p.name}_s" for p in PARTS), "other_s"],
                          float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
