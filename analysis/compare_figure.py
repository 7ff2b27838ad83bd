"""The comparison as one picture (beNNch's flip-book side by side): (a) the scaling curves of
every compared group, (b) the ratios of medians against the reference with their bootstrap
intervals, the tolerance band and each verdict."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from spikescale.analysis import style
from spikescale.analysis.compare_keys import KEY, describe_key

VERDICT_COLORS = {"slower": style.TOL_BRIGHT[1], "more memory": style.TOL_BRIGHT[1], "more energy": style.TOL_BRIGHT[1],
                  "faster": style.TOL_BRIGHT[2], "less memory": style.TOL_BRIGHT[2], "less energy": style.TOL_BRIGHT[2],
                  "no detectable change": style.TOL_BRIGHT[0]}
# rtf is t_sim_s over the model time, which the key fixes: its ratio is t_sim_s's, not drawn twice
DRAWN = {"t_sim_s": ("o", "simulation phase"), "t_construct_s": ("s", "construction"),
         "mem_peak_mb_max": ("^", "peak memory"), "esyn_uj": ("D", "energy per synaptic event")}
LEGEND_HEIGHT = 0.6  # inches below the panels for the ratio panel's legend
SERIES_STYLES = ("-", "--", ":", "-.")


def _curves(ax, ok: pd.DataFrame, groups: list[str]) -> None:
    """Median simulation time against virtual processes, one colour per group, one line style
    per backend and model; bars: the middle half of the runs (25th to 75th percentile)."""
    ok = ok.assign(_vp=ok["nodes"] * ok["tasks_per_node"] * ok["threads_per_task"])
    series = sorted({(r.backend, r.n_scaling, r.k_scaling, r.drive) for r in ok.itertuples()}, key=repr)
    several_sizes = len({s[1:] for s in series}) > 1
    for gi, group in enumerate(groups):
        color = style.TOL_BRIGHT[gi % len(style.TOL_BRIGHT)]
        mine = ok[ok["_group"] == group]
        for si, (backend, n, k, drive) in enumerate(series):
            part = mine[(mine["backend"] == backend) & (mine["n_scaling"] == n) & (mine["k_scaling"] == k)
                        & (mine["drive"] == drive)]
            part = part[np.isfinite(part["t_sim_s"])]
            if part.empty:
                continue
            stats = part.groupby("_vp")["t_sim_s"].quantile([0.25, 0.5, 0.75]).unstack()
            vp = stats.index.to_numpy(dtype=float)
            label = (group if group == backend else f"{group}: {backend}") + (
                f", N x{n:g} K x{k:g} {drive}" if several_sizes else "")
            ax.errorbar(vp, stats[0.5], yerr=[stats[0.5] - stats[0.25], stats[0.75] - stats[0.5]], color=color,
                        ls=SERIES_STYLES[si % len(SERIES_STYLES)], marker="o", ms=4, capsize=3, lw=1.2, label=label)
    vps = np.unique(ok["_vp"].to_numpy(dtype=float)) if not ok.empty else np.array([1.0])
    ax.set_xscale("log", base=2)
    ax.set_xticks(vps, [f"{v:g}" for v in vps])
    ax.set_xlabel("virtual processes (ranks x threads)")
    ax.set_ylabel("simulation phase, median (s)")
    ax.set_ylim(bottom=0)
    ax.set_title("(a) scaling of every group (bars: 25th-75th percentile)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _ratios(ax, table: pd.DataFrame, tolerance: float) -> None:
    """One line per candidate and shared key; a point per metric at its ratio with its 95 %
    interval, coloured by verdict; grey band: no detectable change at the tolerance."""
    parts = list(table.groupby(["candidate", *KEY], sort=False, dropna=False))
    several = table["candidate"].nunique() > 1
    metrics = [m for m in DRAWN if m in set(table["metric"]) and table.loc[table["metric"] == m, "ratio"].notna().any()]
    metrics = metrics or ["t_sim_s"]  # no ratio anywhere: one line per key, saying why
    offsets = dict(zip(metrics, np.linspace(-0.25, 0.25, len(metrics)) if len(metrics) > 1 else [0.0], strict=True))
    ax.axvspan(1 / (1 + tolerance), 1 + tolerance, color="0.85", lw=0, label=f"no detectable change (±{tolerance:.0%})")
    ax.axvline(1.0, color="0.4", lw=0.8)
    drawn_verdicts = set()
    for y, (_, rows) in enumerate(parts):
        for row in rows.itertuples():
            if row.metric not in offsets:
                continue
            marker = DRAWN[row.metric][0]
            yy = y + offsets[row.metric]
            if np.isfinite(row.ratio) and np.isfinite(row.ci_low):
                color = VERDICT_COLORS.get(row.verdict, "0.5")
                ax.errorbar([row.ratio], [yy], xerr=[[row.ratio - row.ci_low], [row.ci_high - row.ratio]], fmt=marker,
                            color=color, ms=5, capsize=3, lw=1.2)
                drawn_verdicts.add(row.verdict)
            elif row.metric == metrics[0]:
                ax.text(1.0, yy, f"  {row.verdict}", fontsize=6, va="center", color="0.3")
    labels = [(f"{rows['candidate'].iloc[0]}: " if several else "") + describe_key(rows.iloc[0]) for _, rows in parts]
    ax.set_yticks(np.arange(len(parts)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    plain = mticker.FuncFormatter(lambda v, _: f"{v:.3g}")  # 1.05, not 1.05 x 10^0
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("ratio of medians, candidate / reference (95 % bootstrap interval)")
    ax.set_title("(b) ratio against the reference")
    handles = [plt.Line2D([], [], ls="none", marker=DRAWN[m][0], color="0.3", label=DRAWN[m][1]) for m in metrics]
    handles += [plt.Line2D([], [], ls="none", marker="s", color=VERDICT_COLORS[v], label=v)
                for v in VERDICT_COLORS if v in drawn_verdicts]
    band = ax.get_legend_handles_labels()[0]
    # below the panels, in room the figure leaves for it: inside, it would cover the intervals
    ax.figure.legend(handles=band + handles, fontsize=7, loc="lower right", ncol=4, bbox_to_anchor=(0.99, 0.0))


def compare_figure(ok: pd.DataFrame, table: pd.DataFrame, groups: list[str], tolerance: float):
    """ok: compare.prepare's runs (disturbed ones included in the curves: the curves show what
    ran; the verdicts in (b) leave them out); table: compare.compare's rows."""
    style.apply()
    n_keys = max(1, len(table.drop_duplicates(["candidate", *KEY]))) if not table.empty else 1
    height = max(4.0, 1.2 + 0.35 * n_keys) + LEGEND_HEIGHT
    fig, (ax_c, ax_r) = plt.subplots(1, 2, figsize=(12, height),
                                     gridspec_kw={"width_ratios": [1, 1.2]})
    _curves(ax_c, ok, groups)
    if table.empty:
        ax_r.text(0.5, 0.5, "nothing shared to compare", ha="center", va="center", transform=ax_r.transAxes)
    else:
        _ratios(ax_r, table, tolerance)
    by = table["by"].iloc[0] if not table.empty else "group"
    fig.suptitle(f"comparison by {by}: {', '.join(groups[1:])} against {groups[0]} (reference)")
    fig.tight_layout(rect=(0, LEGEND_HEIGHT / height, 1, 1))
    return fig
