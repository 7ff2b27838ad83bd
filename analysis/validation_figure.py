"""Validation table and figure of a campaign: ``python -m spikescale.analysis.validation_figure``.

Reads the per-run results of ``analysis.validation check`` and the reference ensemble.
The table has one row per run, population and statistic. The figure shows per population
the mean rate of each validated run beside the reference members', and the runs' KS
distances beside the reference's own pair distances (box) and its threshold (bar). Invalid
runs are drawn as crosses and named in the legend; emulated runs are drawn hollow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from spikescale.analysis import style
from spikescale.analysis.plots import save
from spikescale.analysis.validation import STATISTIC_LABELS, STATISTICS, load_reference

TABLE_COLUMNS = ["run_id", "backend", "seed", "emulated", "weight_factor", "verdict", "population", "statistic",
                 "distance", "threshold", "pair_median", "inside", "note"]


def validation_table(runs: pd.DataFrame, checks: list[dict]) -> pd.DataFrame:
    by_id = runs.set_index("run_id")
    rows = []
    for check in checks:
        run = by_id.loc[check["run_id"]] if check["run_id"] in by_id.index else None
        common = {"run_id": check["run_id"], "verdict": check["verdict"],
                  "backend": run["backend"] if run is not None else "",
                  "seed": run["seed"] if run is not None else "",
                  "emulated": run["emulated"] if run is not None else "",
                  "weight_factor": run["weight_factor"] if run is not None and "weight_factor" in run else 1.0}
        if not check["rows"]:
            rows.append({**common, "population": "", "statistic": "", "distance": np.nan, "threshold": np.nan,
                         "pair_median": np.nan, "inside": "", "note": check["verdict"]})
        for r in check["rows"]:
            rows.append({**common, **r})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _is_true(value) -> bool:
    return str(value).lower() == "true"


def validation_figure(table: pd.DataFrame, checks: list[dict], reference_file: Path, title: str):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    usable, reason, member_ids, members, spread = load_reference(reference_file)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    fig.suptitle(title, fontsize=10)
    if not usable:
        for ax in axes.flat:
            ax.axis("off")
        axes[0, 0].text(0, 0.5, f"reference ensemble unusable: {reason}", transform=axes[0, 0].transAxes)
        return fig
    pops = list(members[0])
    x = np.arange(len(pops))
    backends = sorted({b for b in table["backend"].astype(str) if b})
    colour = {b: style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)] for i, b in enumerate(backends)}
    checked = [c for c in checks if c["rows"]]
    offsets = np.linspace(-0.25, 0.25, max(len(checked), 1)) if len(checked) > 1 else [0.0]

    def draw_run(ax, i, values, check):
        run_rows = table[table["run_id"] == check["run_id"]]
        backend = str(run_rows["backend"].iloc[0]) if len(run_rows) else ""
        valid = check["verdict"].startswith("valid")
        emulated = len(run_rows) and _is_true(run_rows["emulated"].iloc[0])
        c = colour.get(backend, "black")
        ax.scatter(x + offsets[i], values, marker="o" if valid else "X", s=26 if valid else 46, zorder=3,
                   facecolors="none" if emulated else c, edgecolors=c, linewidths=1.2)

    # rates: the reference members' population means (grey) and each run's
    ax = axes[0, 0]
    member_rates = np.array([[np.mean(m[p]["rate_hz"]) for p in pops] for m in members])
    for row in member_rates:
        ax.scatter(x, row, color="0.6", marker="_", s=120, zorder=2)
    for i, check in enumerate(checked):
        draw_run(ax, i, [check["population_means"][p]["rate_hz"] for p in pops], check)
    ax.set_xticks(x, pops)
    ax.set_ylabel("mean firing rate (spikes/s)")
    ax.set_title(f"population rates: runs vs {len(members)} reference members (grey)")

    for ax, stat in zip([axes[0, 1], axes[1, 0], axes[1, 1]], STATISTICS):
        boxes = [spread[(p, stat)][np.isfinite(spread[(p, stat)])] for p in pops]
        ax.boxplot(boxes, positions=x, widths=0.5, showfliers=False,
                   medianprops={"color": "0.3"}, boxprops={"color": "0.6"}, whiskerprops={"color": "0.6"},
                   capprops={"color": "0.6"})
        thresholds = [b.max() if b.size else np.nan for b in boxes]
        ax.scatter(x, thresholds, marker="_", s=300, color="black", zorder=2)
        for i, check in enumerate(checked):
            by_key = {(r["population"], r["statistic"]): r["distance"] for r in check["rows"]}
            draw_run(ax, i, [by_key.get((p, stat), np.nan) for p in pops], check)
        ax.set_xticks(x, pops)
        ax.set_ylabel("Kolmogorov-Smirnov distance (1)")
        ax.set_title(f"{STATISTIC_LABELS[stat]}: distance to the reference")

    handles = [Line2D([], [], color="0.6", marker="s", linestyle="", label="reference pair distances (box)"),
               Line2D([], [], color="black", marker="_", markersize=14, linestyle="",
                      label="threshold: largest reference pair distance")]
    handles += [Line2D([], [], color=colour[b], marker="o", linestyle="", label=f"{b}: valid run") for b in backends]
    invalid = [c for c in checked if not c["verdict"].startswith("valid")]
    for check in invalid:
        handles.append(Line2D([], [], color="black", marker="X", linestyle="",
                              label=f"INVALID {check['run_id']}"))
    if any(_is_true(v) for v in table["emulated"]):
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none", linestyle="",
                              label="hollow: emulated platform"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path, help="runs.csv")
    parser.add_argument("--reference", required=True, type=Path, help="reference ensemble (ensemble.h5)")
    parser.add_argument("--table", required=True, type=Path)
    parser.add_argument("--png", required=True, type=Path)
    parser.add_argument("--pdf", type=Path)
    parser.add_argument("checks", nargs="*", type=Path, help="results of analysis.validation check (JSON)")
    args = parser.parse_args(argv)
    runs = pd.read_csv(args.runs)
    checks = [json.loads(p.read_text()) for p in args.checks]
    table = validation_table(runs, checks)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False)
    verdicts = pd.Series([c["verdict"] for c in checks], dtype=str)
    n_valid = int(verdicts.str.startswith("valid").sum())
    n_invalid = int(verdicts.str.startswith("invalid").sum())
    model = ""
    if len(runs):
        first = runs.iloc[0]
        model = (f"campaign {first['campaign']}, PD14 n_scaling {first['n_scaling']:g}, k_scaling {first['k_scaling']:g}, "
                 f"{first['drive']} drive, {first['t_model_s']:g} s | ")
    title = (f"{model}validation against a NEST reference ensemble | {n_valid} valid, {n_invalid} invalid, "
             f"{len(checks) - n_valid - n_invalid} not checked")
    save(validation_figure(table, checks, args.reference, title), args.png, args.pdf)
    for check in checks:
        print(f"validation {check['run_id']}: {check['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
