"""Figure: real-time factor against energy per synaptic event, log-log, with the community's
published results as labelled reference points and this campaign's points beside them.

Points that have no E_syn cannot be placed on the energy axis; they go into a strip below
it at their real-time factor, one row per reason (a community study that published no
energy; a run whose energy was unavailable, with the short reason). Shape of a marker: the
drive (square DC, circle Poisson); colour: our backends (Paul Tol), grey for the community;
a hollow marker: a platform emulated in software; an x: one disturbed run, at its own values,
not in the means (docs/running.md#disturbed-runs).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from spikescale.analysis import style
from spikescale.analysis.community import COMMUNITY, SOURCE, CommunityResult
from spikescale.analysis.plots import DISTURBED_LABEL, DISTURBED_STYLE, disturbed_note
from spikescale.analysis.rtf_energy_table import SERIES
from spikescale.analysis.scaling import disturbed_values

DRIVE_MARKERS = {"dc": "s", "poisson": "o"}
DRIVE_NAMES = {"dc": "DC", "poisson": "Poisson"}
COMMUNITY_FACE, COMMUNITY_EDGE = "0.6", "black"
NOT_PUBLISHED = "E_syn not published"
REAL_TIME = "real time (RTF = 1)"


def _marker(drive: str) -> str:
    return DRIVE_MARKERS.get(str(drive).lower(), "D")


def scale_text(n_scaling: float, k_scaling: float) -> str:
    if n_scaling == 1 and k_scaling == 1:
        return "full scale"
    if n_scaling == k_scaling:
        return f"scale {n_scaling:g}"
    return f"scale N {n_scaling:g}, K {k_scaling:g}"


def series_label(backend, platform, emulated, n_scaling, k_scaling, drive, energy_kind, rtf_kind="measured") -> str:
    """Legend entry of one of our series: who, where, which drive, which scale, which energy
    (and a modelled RTF: an emulated platform's)."""
    where = f"{backend} on {platform}" if platform and platform != backend else str(backend)
    energy = f"energy {energy_kind}" if energy_kind else "energy unavailable"
    rtf = ", RTF modelled" if rtf_kind == "modelled" else ""
    return (f"{where}{' (emulated)' if emulated else ''}, {DRIVE_NAMES.get(str(drive).lower(), drive)} drive, "
            f"{scale_text(n_scaling, k_scaling)}, {energy}{rtf}")


def _no_esyn_reason(row) -> str:
    if row.energy_kind:
        return f"{row.energy_kind} energy, but no E_syn (no synaptic events or no simulation-phase energy)"
    return f"energy unavailable: {row.energy_unavailable_short or 'no reason recorded'}"


def _disturbed_points(row) -> list[tuple[float, float]]:
    """(RTF, E_syn) of each disturbed run of a row (E_syn NaN where it has none)."""
    rtfs = disturbed_values(getattr(row, "rtf_disturbed", ""))
    esyns = disturbed_values(getattr(row, "esyn_uj_disturbed", "")) or [np.nan] * len(rtfs)
    return list(zip(rtfs, esyns, strict=True))


def _has_mean(row) -> bool:
    """False for a point whose runs were all disturbed (and left out): it has no mean."""
    return getattr(row, "n_runs", 1) > 0


def _community_key(i: int, r: CommunityResult) -> str:
    energy = f"E_syn {r.esyn_uj:g} \u00b5J" if r.esyn_uj is not None else NOT_PUBLISHED
    return f"{i:>2}  {r.label}; RTF {r.rtf:g}, {energy}"


def rtf_energy_figure(table: pd.DataFrame, title: str, community: tuple[CommunityResult, ...] = COMMUNITY):
    """Main axes (label 'rtf_energy'): E_syn over RTF, log-log, dashed line at real time;
    strip below (label 'energy_unavailable'): points without E_syn, at their RTF; key on the
    right (label 'key'): the community studies by number, the legend, the scale caveat."""
    style.apply()
    note = disturbed_note(table)  # a second title line: the panels start lower
    fig = plt.figure(figsize=(13, 7))
    grid = fig.add_gridspec(2, 2, height_ratios=[4, 1.2], width_ratios=[1.35, 1], hspace=0.06, wspace=0.04,
                            left=0.07, right=0.99, top=0.87 if note else 0.91, bottom=0.09)
    ax = fig.add_subplot(grid[0, 0], label="rtf_energy")
    strip = fig.add_subplot(grid[1, 0], sharex=ax, label="energy_unavailable")
    key = fig.add_subplot(grid[:, 1], label="key")
    key.axis("off")

    # rows of the strip, one per reason a point has no E_syn, in order of first appearance
    reasons = [NOT_PUBLISHED] if any(r.esyn_uj is None for r in community) else []
    for row in table.itertuples():
        lacks = (_has_mean(row) and np.isnan(row.esyn_uj_mean)) or any(np.isnan(e) for _, e in _disturbed_points(row))
        if lacks and _no_esyn_reason(row) not in reasons:
            reasons.append(_no_esyn_reason(row))
    strip_y = {reason: -i for i, reason in enumerate(reasons)}

    rtfs = [r.rtf for r in community]
    placed = []
    for i, r in enumerate(community, start=1):
        style_kw = dict(marker=_marker(r.drive), ms=7, mfc=COMMUNITY_FACE, mec=COMMUNITY_EDGE, ls="none", zorder=3)
        target, y = (ax, r.esyn_uj) if r.esyn_uj is not None else (strip, strip_y[NOT_PUBLISHED])
        target.plot([r.rtf], [y], gid=f"community {i}", label=f"_{r.label}", **style_kw)
        # two studies at nearly the same point (Rhodes 2019, DC and Poisson): the later number on the left
        crowded = any(t is target and abs(np.log(r.rtf / x)) < 0.1 and abs(np.log(abs(y / v) or 1)) < 0.15
                      for t, x, v in placed if v)
        placed.append((target, r.rtf, y))
        target.annotate(str(i), (r.rtf, y), xytext=(-11, 3) if crowded else (4, 4), textcoords="offset points",
                        fontsize=7, color=COMMUNITY_EDGE, gid=f"community {i}")

    handles = [Line2D([], [], marker="s", ms=7, mfc=COMMUNITY_FACE, mec=COMMUNITY_EDGE, ls="none",
                      label="published, full scale, DC drive"),
               Line2D([], [], marker="o", ms=7, mfc=COMMUNITY_FACE, mec=COMMUNITY_EDGE, ls="none",
                      label="published, full scale, Poisson drive")]
    backends = sorted(table["backend"].astype(str).unique()) if not table.empty else []
    colors = {b: style.TOL_BRIGHT[i % (len(style.TOL_BRIGHT) - 1)] for i, b in enumerate(backends)}  # grey: community
    for key_values, series in table.groupby(SERIES, sort=False):
        values = dict(zip(SERIES, key_values, strict=True))
        color = colors[str(values["backend"])]
        label = series_label(**values)
        style_kw = dict(marker=_marker(values["drive"]), ms=8, mec=color, mew=1.5, ls="none", zorder=4,
                        mfc="none" if values["emulated"] else color)
        handles.append(Line2D([], [], color=color, label=label, **style_kw))
        has = series[series["esyn_uj_mean"].notna()]
        if not has.empty:
            ax.errorbar(has["rtf_mean"], has["esyn_uj_mean"], xerr=np.nan_to_num(has["rtf_sd"]),
                        yerr=np.nan_to_num(has["esyn_uj_sd"]), fmt="none", ecolor=color, capsize=2, lw=1)
            ax.plot(has["rtf_mean"], has["esyn_uj_mean"], color=color, gid="ours", label=label, **style_kw)
        for row in series.itertuples():
            for rtf, esyn in _disturbed_points(row):
                rtfs.append(rtf)
                target, y = (ax, esyn) if not np.isnan(esyn) else (strip, strip_y[_no_esyn_reason(row)])
                target.plot([rtf], [y], gid="disturbed", label=f"_{DISTURBED_LABEL}", **DISTURBED_STYLE)
                target.annotate(f"{row.shape}, disturbed", (rtf, y), xytext=(5, -9), textcoords="offset points",
                                fontsize=6, color=color)
            if not _has_mean(row):
                continue
            rtfs.append(row.rtf_mean)
            on_axis = not np.isnan(row.esyn_uj_mean)
            target, y = (ax, row.esyn_uj_mean) if on_axis else (strip, strip_y[_no_esyn_reason(row)])
            if not on_axis:
                target.errorbar([row.rtf_mean], [y], xerr=[np.nan_to_num(row.rtf_sd)], fmt="none", ecolor=color,
                                capsize=2, lw=1)
                target.plot([row.rtf_mean], [y], color=color, gid="ours", label=f"_{label}", **style_kw)
            target.annotate(row.shape, (row.rtf_mean, y), xytext=(5, -9), textcoords="offset points", fontsize=6,
                            color=color)

    for target in (ax, strip):
        target.axvline(1.0, ls="--", color="black", lw=1, label=REAL_TIME if target is ax else "_real time")
    handles.append(Line2D([], [], ls="--", color="black", lw=1, label=REAL_TIME))
    if note:
        handles.append(Line2D([], [], label=f"{DISTURBED_LABEL} (own RTF and E_syn)", **DISTURBED_STYLE))

    positive = [v for v in rtfs if np.isfinite(v) and v > 0]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(min(positive) / 2, max(positive) * 2)
    ax.set_ylabel("energy per synaptic event E_syn (\u00b5J)")
    ax.set_title("simulation phase: energy per synaptic event over real-time factor", fontsize=9)
    ax.tick_params(labelbottom=False)
    ax.text(1.0, 0.99, "faster \u2190  real time  \u2192 slower", transform=blended_transform_factory(
        ax.transData, ax.transAxes), ha="center", va="top", fontsize=7, color="0.3",
        bbox=dict(fc="white", ec="none", pad=1))

    strip.set_xlabel("real-time factor q_RTF (wall-clock s / model s)")
    strip.set_yticks([])
    strip.set_ylim(-len(reasons) + 0.4, 0.8)
    strip.grid(False, axis="y")
    strip.spines["left"].set_visible(False)
    at_left = blended_transform_factory(strip.transAxes, strip.transData)
    for reason, y in strip_y.items():
        strip.text(0.005, y + 0.3, textwrap.shorten(reason, 110), transform=at_left, fontsize=7, color="0.25",
                   va="bottom", bbox=dict(fc="white", ec="none", alpha=0.8, pad=1), zorder=5)
    if not reasons:
        strip.text(0.5, 0.5, "every point has an E_syn", transform=strip.transAxes, ha="center", fontsize=7)

    _key(key, community, handles, table)
    fig.suptitle(f"{title}\n{note}" if note else title)
    return fig


def _key(key, community, handles, table: pd.DataFrame) -> None:
    """Right-hand panel: community studies by number, the legend, the scale caveat."""
    key.text(0.0, 1.0, f"Published, full-scale PD14 (Senk et al. 2026; data as of {SOURCE['date']}):",
             transform=key.transAxes, fontsize=8, fontweight="bold", va="top", gid="community source")
    step = 0.032
    for i, r in enumerate(community, start=1):
        key.text(0.0, 1.0 - step * i, _community_key(i, r), transform=key.transAxes, fontsize=7, va="top",
                 gid=f"community key {i}")
    top = 1.0 - step * (len(community) + 1.3)
    key.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, top), fontsize=7, frameon=False,
               title="markers" if not table.empty else "markers (no successful runs of this campaign)",
               title_fontsize=8, alignment="left")
    scaled = sorted({(r.n_scaling, r.k_scaling) for r in table.itertuples() if not r.full_scale})
    notes = []
    if scaled:
        scales = ", ".join(scale_text(n, k) for n, k in scaled)
        notes.append(f"Our points at {scales} are not comparable in absolute terms with the full-scale "
                     "published ones: a down-scaled PD14 has fewer neurons and synapses, other firing rates, "
                     "and fixed costs weigh more per synaptic event. Compare our shapes and backends with "
                     "each other.")
    notes.append("Error bars: one standard deviation over seeds and repetitions. Labels at our points: "
                 "nodes x tasks per node x threads per task.")
    key.text(0.0, 0.0, "\n".join(textwrap.fill(n, 78) for n in notes), transform=key.transAxes, fontsize=7,
             va="bottom", color="0.2", gid="caveat")
