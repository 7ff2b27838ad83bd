"""The advisor's figure, one row per backend series: (a) real-time factor against model size,
measured runs and fitted curves with prediction bands per measured shape and the advised one,
the target size marked; (b) peak memory per node likewise, with a node's memory drawn; (c) the
predicted RTF at the target size as nodes are added (dashed and labelled where it extrapolates
beyond the nodes measured), its communication part, and where communication would dominate."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from spikescale.analysis import style
from spikescale.analysis.advisor import Advice, BackendModel

SIZE_POINTS = 40


def _sizes(model: BackendModel, target: tuple[float, float]) -> np.ndarray:
    """n_scaling grid from the smallest measured size to past the target (k in the target's
    proportion to n)."""
    low = min(n for n, _ in model.sizes)
    high = max(max(n for n, _ in model.sizes), target[0])
    return np.geomspace(low, high, SIZE_POINTS)


def _shapes(model: BackendModel, advice: Advice) -> list[tuple[int, int, int]]:
    shapes = sorted({(c.nodes, c.tasks_per_node, c.threads_per_task) for c in model.configs})
    if advice.fastest is not None:
        best = (int(advice.fastest["nodes"]), int(advice.fastest["tasks_per_node"]),
                int(advice.fastest["threads_per_task"]))
        if best not in shapes:
            shapes.append(best)
    return shapes


def _size_panel(ax, model: BackendModel, advice: Advice, target: tuple[float, float], figure: str, ylabel: str,
                per_node: bool, limit: float | None = None) -> None:
    fit = model.fits.get(figure)
    if fit is None:
        ax.text(0.5, 0.5, textwrap.fill(f"no model: {model.missing.get(figure, '')}", 50), ha="center",
                va="center", transform=ax.transAxes)
        return
    ratio = target[1] / target[0]
    grid = _sizes(model, target)
    measured_max = max(c.n_synapses for c in model.configs)
    for i, shape in enumerate(_shapes(model, advice)):
        color = style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)]
        factor = shape[1] if per_node else 1
        pts = [(c.n_synapses, v * factor) for c, v in zip(fit.configs, fit.measured)
               if (c.nodes, c.tasks_per_node, c.threads_per_task) == shape]
        label = f"{shape[0]}x{shape[1]}x{shape[2]}"
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, "o", color=color, ms=4, label=f"{label} measured")
        else:
            label += " (advised; not measured)"
        configs = [model.configuration(n, n * ratio, *shape) for n in grid]
        preds = [fit.predict(c) for c in configs]
        syn = np.array([c.n_synapses for c in configs])
        value = np.array([p.value for p in preds]) * factor
        low = np.array([p.low for p in preds]) * factor
        high = np.array([p.high for p in preds]) * factor
        inside = syn <= measured_max * 1.001
        ax.plot(syn[inside], value[inside], "-", color=color, lw=1.2, label=f"{label} fitted")
        ax.plot(syn[~inside], value[~inside], "--", color=color, lw=1.2)
        ax.fill_between(syn, low, high, color=color, alpha=0.15, lw=0)
    target_syn = model.configuration(*target, 1, 1, 1).n_synapses
    ax.axvline(target_syn, color="k", lw=0.8, ls=":")
    ax.text(target_syn, 1.0, " target", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
    ax.axvspan(measured_max, max(target_syn, measured_max) * 1.05, color="0.9", zorder=0)
    ax.text(measured_max, 0.02, " extrapolation", transform=ax.get_xaxis_transform(), fontsize=7, color="0.3")
    if limit:
        ax.axhline(limit, color=style.TOL_BRIGHT[1], lw=0.8)
        ax.text(0.98, limit, "memory of a node", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                fontsize=7, color=style.TOL_BRIGHT[1])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("recurrent synapses (model size)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6, loc="best")


def _nodes_panel(ax, advice: Advice) -> None:
    curve = advice.curve
    if curve.empty:
        ax.text(0.5, 0.5, "no RTF model", ha="center", va="center", transform=ax.transAxes)
        return
    nodes = curve["nodes"].to_numpy(dtype=float)
    measured = ~curve["extrapolated"].to_numpy(dtype=bool)
    color = style.TOL_BRIGHT[0]
    ax.plot(nodes[measured], curve["rtf"][measured], "-o", color=color, ms=3, label="predicted RTF")
    # the dashed part starts at the last measured node count so the line is continuous
    start = max(int(measured.sum()) - 1, 0)
    ax.plot(nodes[start:], curve["rtf"].to_numpy()[start:], "--", color=color, label="extrapolation")
    ax.fill_between(nodes, curve["rtf_low"], curve["rtf_high"], color=color, alpha=0.15, lw=0)
    comm = curve["communication"].to_numpy(dtype=float)
    if np.any(comm > 0):
        ax.plot(nodes, comm, ":", color=style.TOL_BRIGHT[1], label="communication part")
    if advice.communication_dominates_at_nodes is not None:
        ax.axvline(advice.communication_dominates_at_nodes, color=style.TOL_BRIGHT[1], lw=0.8)
        ax.text(advice.communication_dominates_at_nodes, 0.95, " communication dominates",
                transform=ax.get_xaxis_transform(), fontsize=7, va="top", color=style.TOL_BRIGHT[1])
    else:
        ax.text(0.02, 0.02, textwrap.fill(advice.communication_reason, 70), transform=ax.transAxes, fontsize=6,
                va="bottom")
    first = curve.iloc[0]
    ax.set_title(f"{int(first['tasks_per_node'])} rank(s) x {int(first['threads_per_task'])} thread(s) per node",
                 fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("nodes")
    ax.set_ylabel("real-time factor (predicted)")
    ax.legend(fontsize=6, loc="upper right")


def advisor_figure(models: list[BackendModel], advices: list[Advice], target: tuple[float, float],
                   memory_per_node_mb: float | None = None):
    style.apply()
    if not models:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "Configuration advisor: no ok, undisturbed performance run to fit", ha="center")
        return fig
    fig, axes = plt.subplots(len(models), 3, figsize=(14, 4.2 * len(models)), squeeze=False, layout="constrained")
    for row, (model, advice) in enumerate(zip(models, advices)):
        _size_panel(axes[row, 0], model, advice, target, "rtf", f"{model.series}: real-time factor", False)
        _size_panel(axes[row, 1], model, advice, target, "mem_rank_mb", f"{model.series}: peak memory per node (MB)",
                    True, memory_per_node_mb)
        _nodes_panel(axes[row, 2], advice)
    fig.suptitle(f"Configuration advisor: PD14 at n_scaling {target[0]:g}, k_scaling {target[1]:g}; every line and "
                 "band is modelled (fitted to the dots), 95 % intervals for a new run", fontsize=9)
    return fig
