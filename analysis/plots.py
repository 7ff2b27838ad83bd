"""Strong-scaling figure in beNNch-plot's manner: stacked phase times per resource shape
with the real-time factor beside them, then speedup and parallel efficiency."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import style
from analysis.scaling import PHASE_COLUMNS, shape_label


def _nan_to_zero(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)


def _no_runs(fig, axes, title: str):
    for ax in axes:
        ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    return fig


def _phase_bars(ax, table: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """Mean time per phase, stacked, one bar per row of the table; returns the bar tops."""
    bottom = np.zeros(len(table))
    for col in PHASE_COLUMNS:
        height = _nan_to_zero(table[f"{col}_mean"])
        ax.bar(x, height, bottom=bottom, color=style.PHASE_COLORS[col], label=style.PHASE_LABELS[col], width=0.6)
        bottom += height
    ax.set_ylabel("wall-clock time (s)")
    ax.set_title("(a) time per phase")
    return bottom


def _twin_legend(ax, twin, loc: str) -> None:
    """One legend for an axis and its twin: phases top to bottom as stacked, then the twin's."""
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = twin.get_legend_handles_labels()
    ax.legend(handles[::-1] + h2, names[::-1] + n2, fontsize=7, loc=loc)


def strong_scaling_figure(table: pd.DataFrame, title: str):
    """Three panels: (a) mean phase times, stacked, with the RTF on a second axis;
    (b) speedup against virtual processes with the ideal line; (c) parallel efficiency.
    Error bars are one standard deviation over seeds and repetitions."""
    style.apply()
    fig, (ax_t, ax_s, ax_e) = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    if table.empty:
        return _no_runs(fig, (ax_t, ax_s, ax_e), title)

    x = np.arange(len(table))
    several = table["backend"].nunique() > 1 or table["n_scaling"].nunique() > 1
    labels = [("{} s{:g}\n".format(r.backend, r.n_scaling) if several else "")
              + shape_label(r.nodes, r.tasks_per_node, r.threads_per_task) for r in table.itertuples()]
    bottom = _phase_bars(ax_t, table, x)
    ax_t.errorbar(x, table["t_sim_s_mean"] + bottom - _nan_to_zero(table["t_sim_s_mean"]),
                  yerr=_nan_to_zero(table["t_sim_s_sd"]), fmt="none", ecolor="black", capsize=3, lw=1)
    ax_t.set_xticks(x, labels)
    ax_t.set_xlabel("nodes x tasks per node x threads per task")
    ax_rtf = ax_t.twinx()
    ax_rtf.errorbar(x, table["rtf_mean"], yerr=_nan_to_zero(table["rtf_sd"]), color="black", marker="o",
                    lw=1.2, capsize=3, label="real-time factor")
    ax_rtf.set_ylabel("real-time factor (wall-clock s / model s)")
    ax_rtf.set_ylim(bottom=0)
    ax_rtf.grid(False)
    _twin_legend(ax_t, ax_rtf, "upper right")

    for i, ((backend, n_scaling), group) in enumerate(table.groupby(["backend", "n_scaling"], sort=True)):
        color = style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)]
        name = f"{backend}, n_scaling {n_scaling:g}"
        vp = group["virtual_processes"].to_numpy()
        ax_s.errorbar(vp, group["speedup_mean"], yerr=_nan_to_zero(group["speedup_sd"]), marker="o",
                      color=color, capsize=3, label=name)
        ax_e.errorbar(vp, group["efficiency_mean"], yerr=_nan_to_zero(group["efficiency_sd"]), marker="o",
                      color=color, capsize=3, label=name)
    vps = np.unique(table["virtual_processes"].to_numpy())
    base = vps.min()
    ax_s.plot(vps, vps / base, ls="--", color="grey", label="ideal")
    ax_e.axhline(1.0, ls="--", color="grey", label="ideal")
    for ax, name, ylabel in ((ax_s, "(b) speedup of the simulation phase", "speedup (1)"),
                             (ax_e, "(c) parallel efficiency", "efficiency (1)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(vps, [str(v) for v in vps])
        ax.set_xlabel("virtual processes (ranks x threads)")
        ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.legend(fontsize=7)
    ax_e.set_ylim(0, max(1.2, float(np.nanmax(table["efficiency_mean"])) * 1.1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def weak_scaling_figure(table: pd.DataFrame, title: str):
    """Two panels: (a) mean phase times, stacked, per shape and model size, with the mean
    firing rate on a second axis (growing PD14 changes its dynamics); (b) simulation time
    against virtual processes with the ideal horizontal line, and the weak-scaling
    efficiency on a second axis. Error bars: one standard deviation over seeds and repetitions."""
    style.apply()
    fig, (ax_t, ax_w) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.3, 1]})
    if table.empty:
        return _no_runs(fig, (ax_t, ax_w), title)
    x = np.arange(len(table))
    labels = [f"{shape_label(r.nodes, r.tasks_per_node, r.threads_per_task)}\nN x{r.n_scaling:g}"
              for r in table.itertuples()]
    _phase_bars(ax_t, table, x)
    ax_t.set_xticks(x, labels)
    ax_t.set_xlabel("nodes x tasks per node x threads per task, and N_scaling")
    ax_rate = ax_t.twinx()
    ax_rate.plot(x, table["rate_mean_hz_mean"], color="black", marker="s", lw=1, label="mean rate")
    ax_rate.set_ylabel("mean firing rate (spikes/s)")
    ax_rate.set_ylim(bottom=0)
    ax_rate.grid(False)
    _twin_legend(ax_t, ax_rate, "upper left")

    ax_eff = ax_w.twinx()
    for i, (backend, group) in enumerate(table.groupby("backend", sort=True)):
        color = style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)]
        vp = group["virtual_processes"].to_numpy()
        ax_w.errorbar(vp, group["t_sim_s_mean"], yerr=_nan_to_zero(group["t_sim_s_sd"]), marker="o", color=color,
                      capsize=3, label=f"{backend}: simulation time")
        ax_w.axhline(float(group["t_sim_s_mean"].iloc[0]), ls="--", color=color, lw=1, label="ideal (flat)")
        ax_eff.plot(vp, group["weak_efficiency_mean"], marker="^", ls=":", color=color,
                    label=f"{backend}: efficiency")
    vps = np.unique(table["virtual_processes"].to_numpy())
    ax_w.set_xscale("log", base=2)
    ax_w.set_xticks(vps, [str(v) for v in vps])
    ax_w.set_xlabel("virtual processes (ranks x threads)")
    ax_w.set_ylabel("simulation phase (s)")
    ax_w.set_ylim(bottom=0)
    ax_w.set_title("(b) weak scaling")
    ax_eff.set_ylabel("weak-scaling efficiency (1)")
    ax_eff.set_ylim(0, max(1.2, float(np.nanmax(table["weak_efficiency_mean"])) * 1.1))
    ax_eff.grid(False)
    handles, names = ax_w.get_legend_handles_labels()
    h2, n2 = ax_eff.get_legend_handles_labels()
    ax_w.legend(handles + h2, names + n2, fontsize=7, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save(fig, png: Path, pdf: Path | None = None) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    if pdf is not None:
        fig.savefig(pdf)
    plt.close(fig)
