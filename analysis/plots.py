"""Strong-scaling figure in beNNch-plot's manner: stacked phase times per resource shape
with the real-time factor beside them, then speedup and parallel efficiency. Disturbed runs
(docs/running.md#disturbed-runs) are marked x at their own values and, unless the table says
otherwise, are not in the means; the title says how many."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spikescale import phases
from spikescale.analysis import style
from spikescale.analysis.scaling import MODEL, disturbed_values, shape_label


def _nan_to_zero(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)


# Disturbed runs: their own values, a marker no series uses
DISTURBED_STYLE = {"marker": "x", "ms": 8, "mew": 2, "color": "black", "ls": "none", "zorder": 5}
DISTURBED_LABEL = "disturbed run"


def disturbed_note(table: pd.DataFrame) -> str:
    """What a figure says about its disturbed runs: how many, whether the means have them,
    and the points left without a mean because every run of theirs was disturbed."""
    if "n_runs_disturbed" not in table or table.empty:
        return ""
    counts = pd.to_numeric(table["n_runs_disturbed"], errors="coerce").fillna(0).astype(int)
    if counts.sum() == 0:
        return ""
    in_means = table.attrs.get("disturbed_in_means", False)
    note = f"{counts.sum()} disturbed run(s), marked x, " + ("included in the means" if in_means
                                                              else "left out of the means")
    empty = table[(counts > 0) & (pd.to_numeric(table["n_runs"], errors="coerce") == 0)]
    if not empty.empty:
        shapes = ", ".join(shape_label(r.nodes, r.tasks_per_node, r.threads_per_task) for r in empty.itertuples())
        note += f"; no mean at {shapes}: every run there was disturbed"
    return note


def _titled(title: str, table: pd.DataFrame) -> str:
    note = disturbed_note(table)
    return f"{title}\n{note}" if note else title


def _mark_disturbed(ax, xs, cells) -> None:
    """An x at each disturbed run's value, at its point's x; one legend entry."""
    label = DISTURBED_LABEL
    for x, cell in zip(xs, cells, strict=True):
        values = disturbed_values(cell)
        if values:
            ax.plot([x] * len(values), values, gid="disturbed", label=label, **DISTURBED_STYLE)
            label = f"_{DISTURBED_LABEL}"


def _no_mean_marks(ax, xs, table: pd.DataFrame) -> None:
    """'all disturbed' over the points that have no mean for that reason."""
    if "n_runs_disturbed" not in table:
        return
    for x, row in zip(xs, table.itertuples(), strict=True):
        if row.n_runs == 0 and row.n_runs_disturbed > 0:
            ax.text(x, 0, "all runs\ndisturbed", ha="center", va="bottom", fontsize=7, rotation=90,
                    gid="all disturbed")


def _no_runs(fig, axes, title: str):
    for ax in axes:
        ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    return fig


def _phase_bars(ax, table: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """Mean time per phase, stacked, one bar per row of the table; returns the bar tops."""
    bottom = np.zeros(len(table))
    for phase in phases.STACKED:
        mean = f"{phases.column(phase)}_mean"
        if mean not in table or table[mean].isna().all():
            continue  # a phase no backend here has (compile, load: Brian2 and SpiNNaker only)
        height = _nan_to_zero(table[mean])
        ax.bar(x, height, bottom=bottom, color=style.PHASE_COLORS[phase], label=phases.BY_NAME[phase].label,
               width=0.6)
        bottom += height
    ax.set_ylabel("wall-clock time (s)")
    ax.set_title("(a) time per phase")
    return bottom


def _twin_legend(ax, twin, loc: str, below: bool = False) -> bool:
    """One legend for an axis and its twin: phases top to bottom as stacked, then the twin's.
    below: a legend of the whole figure, under the panels (it grows with the series and
    would hide the bars); the caller then leaves room for it. Returns `below`."""
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = twin.get_legend_handles_labels()
    if below:
        ax.figure.legend(handles[::-1] + h2, names[::-1] + n2, fontsize=7, loc="lower left", ncol=4,
                         bbox_to_anchor=(0.01, 0.0))
    else:
        ax.legend(handles[::-1] + h2, names[::-1] + n2, fontsize=7, loc=loc)
    return below


def _series_names(table: pd.DataFrame) -> dict[tuple, str]:
    """A name per scaling series (backend, model size, drive): the backend, plus the size and
    drive where the table has more than one of them."""
    show = [col for col in ("n_scaling", "k_scaling", "drive") if table[col].nunique() > 1]
    names = {}
    for key, _ in table.groupby(MODEL, sort=False):
        values = dict(zip(MODEL, key, strict=True))
        extra = [f"{'N' if c == 'n_scaling' else 'K'} x{values[c]:g}" if c != "drive" else f"{values[c]} drive"
                 for c in show]
        names[key] = ", ".join([str(values["backend"]), *extra])
    return names


RTF_MARKERS = ("o", "s", "^", "D", "v", "P")


def strong_scaling_figure(table: pd.DataFrame, title: str):
    """Three panels: (a) mean phase times, stacked, with the RTF on a second axis;
    (b) speedup against virtual processes with the ideal line; (c) parallel efficiency.
    Error bars are one standard deviation over seeds and repetitions. With several backends
    (or model sizes, drives) in one campaign, each is a series of its own: its bars side by
    side in (a) with its own RTF line (marker filled in its colour), and its own line in (b)
    and (c), each against its own base and ideal."""
    style.apply()
    fig, (ax_t, ax_s, ax_e) = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    if table.empty:
        return _no_runs(fig, (ax_t, ax_s, ax_e), title)

    table = table.reset_index(drop=True)  # row i is bar i
    x = np.arange(len(table))
    names = _series_names(table)
    several = len(names) > 1
    colors = {key: style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)] for i, key in enumerate(names)}
    # a series name on lines of its own words ("spinnaker\n(emulated)"): bars are narrow
    labels = [(names[tuple(getattr(r, c) for c in MODEL)].replace(" (", "\n(") + "\n" if several else "")
              + shape_label(r.nodes, r.tasks_per_node, r.threads_per_task) for r in table.itertuples()]
    bottom = _phase_bars(ax_t, table, x)
    ax_t.errorbar(x, table["t_sim_s_mean"] + bottom - _nan_to_zero(table["t_sim_s_mean"]),
                  yerr=_nan_to_zero(table["t_sim_s_sd"]), fmt="none", ecolor="black", capsize=3, lw=1)
    ax_t.set_xticks(x, labels)
    if several:
        ax_t.tick_params(axis="x", labelsize=8)
    ax_t.set_xlabel("nodes x tasks per node x threads per task")
    ax_rtf = ax_t.twinx()
    for i, (key, group) in enumerate(table.groupby(MODEL, sort=False)):
        where = x[group.index.to_numpy()]
        if several and where[0] > 0:
            ax_t.axvline(where[0] - 0.5, color="0.5", lw=0.8, ls=":")
        ax_rtf.errorbar(where, group["rtf_mean"], yerr=_nan_to_zero(group["rtf_sd"]), color="black",
                        marker=RTF_MARKERS[i % len(RTF_MARKERS)], mfc=colors[key] if several else "black",
                        mec="black", ms=7, lw=1.2, capsize=3,
                        label="real-time factor" + (f": {names[key]}" if several else ""))
    if "rtf_disturbed" in table:
        _mark_disturbed(ax_rtf, x, table["rtf_disturbed"])
        _no_mean_marks(ax_t, x, table)
    ax_rtf.set_ylabel("real-time factor (wall-clock s / model s)")
    ax_rtf.set_ylim(bottom=0)
    ax_rtf.grid(False)
    legend_below = _twin_legend(ax_t, ax_rtf, "upper right", below=several)

    ideal = set()
    for key, group in table.groupby(MODEL, sort=False):
        vp = group["virtual_processes"].to_numpy()
        for ax, metric in ((ax_s, "speedup"), (ax_e, "efficiency")):
            ax.errorbar(vp, group[f"{metric}_mean"], yerr=_nan_to_zero(group[f"{metric}_sd"]), marker="o",
                        color=colors[key], capsize=3, label=names[key])
        ideal.add(tuple(sorted(int(v) for v in np.unique(vp))))
    for i, series_vps in enumerate(sorted(ideal)):  # each series against its own base
        ideal_vps = np.array(series_vps)
        ax_s.plot(ideal_vps, ideal_vps / ideal_vps[0], ls="--", color="grey", label="ideal" if i == 0 else "_ideal")
    ax_e.axhline(1.0, ls="--", color="grey", label="ideal")
    vps = np.unique(table["virtual_processes"].to_numpy())
    for ax, name, ylabel in ((ax_s, "(b) speedup of the simulation phase", "speedup (1)"),
                             (ax_e, "(c) parallel efficiency", "efficiency (1)")):
        ax.set_xscale("log", base=2)
        # limits from the shapes, not the data: a point whose runs were all disturbed has no
        # mean, and a log axis over no data at all cannot be drawn
        ax.set_xlim(vps.min() / 1.5, vps.max() * 1.5)
        ax.set_xticks(vps, [str(v) for v in vps])
        ax.set_xlabel("virtual processes (ranks x threads)")
        ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.legend(fontsize=7)
    ax_e.set_ylim(0, max(1.2, float(np.nanmax(table["efficiency_mean"], initial=0)) * 1.1))
    fig.suptitle(_titled(title, table))
    if legend_below:
        fig.set_figheight(fig.get_figheight() + 0.9)
        fig.tight_layout(rect=(0, 0.16, 1, 1))
    else:
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
    if "t_sim_s_disturbed" in table:
        _mark_disturbed(ax_w, table["virtual_processes"].to_numpy(), table["t_sim_s_disturbed"])
        _no_mean_marks(ax_t, x, table)
    ax_w.set_xscale("log", base=2)
    ax_w.set_xlim(vps.min() / 1.5, vps.max() * 1.5)  # from the shapes: a point may have no mean (disturbed)
    ax_w.set_xticks(vps, [str(v) for v in vps])
    ax_w.set_xlabel("virtual processes (ranks x threads)")
    ax_w.set_ylabel("simulation phase (s)")
    ax_w.set_ylim(bottom=0)
    ax_w.set_title("(b) weak scaling")
    ax_eff.set_ylabel("weak-scaling efficiency (1)")
    ax_eff.set_ylim(0, max(1.2, float(np.nanmax(table["weak_efficiency_mean"], initial=0)) * 1.1))
    ax_eff.grid(False)
    handles, names = ax_w.get_legend_handles_labels()
    h2, n2 = ax_eff.get_legend_handles_labels()
    ax_w.legend(handles + h2, names + n2, fontsize=7, loc="lower left")
    fig.suptitle(_titled(title, table))
    fig.tight_layout()
    return fig


def save(fig, png: Path, pdf: Path | None = None) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    if pdf is not None:
        fig.savefig(pdf)
    plt.close(fig)
