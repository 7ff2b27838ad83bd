"""One figure across software versions or dates, from the results index:
``python -m spikescale.analysis.history <results_dir>``.

Reads every indexed run (spikescale.index.query, <results_dir>/index.sqlite) that matches
``--where``; keeps the ok, undisturbed performance runs; and per series (machine, backend,
model and shape) and point gives the median of the chosen figure with its 95 % percentile
bootstrap interval (as compare does, seeded) and the number of runs behind it:

    --x date      one point per campaign folder, at the time collect wrote its runs.csv
    --x version   one point per version of the backend's simulator (nest_version,
                  brian2_version, pygenn_version, spynnaker_version) and software variant, runs of the same
                  version pooled across campaigns, in the order they were first collected

A point of fewer than compare.MIN_RUNS runs is drawn hollow, without an interval. With
``--baseline`` the baseline file's references of that figure are drawn as dashed lines
(the value) with the tolerance's limit dotted above.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from spikescale import index
from spikescale.analysis.compare import (
    CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    METRICS,
    MIN_RUNS,
    Resampler,
    prepare,
)
from spikescale.errors import ConfigError

SERIES = ["machine", "backend", "n_scaling", "k_scaling", "drive", "t_model_s", "nodes", "tasks_per_node",
          "threads_per_task"]
VERSION_OF = {"nest": "nest_version", "brian2": "brian2_version", "brian2genn": "brian2_version",
              "genn": "pygenn_version", "spinnaker": "spynnaker_version"}
# What the history needs of each run (the index has over 100 columns).
NEEDED = ["campaign", "run_id", "status", "record_spikes", "emulated", "disturbed", "variant", "results_path",
          "collected_at", *SERIES, *VERSION_OF.values(), *METRICS]
COLUMNS = [*SERIES, "x", "collected_at", "campaigns", "n_runs", "n_disturbed", "median", "ci_low", "ci_high"]


def version_label(runs: pd.DataFrame) -> pd.Series:
    """'<simulator> <version>' of each run's backend, with its variant where runs.csv names one."""
    def one(row) -> str:
        backend = str(row["backend"]).removesuffix(" (emulated)")
        column = VERSION_OF.get(backend)
        version = row.get(column) if column else None
        text = f"{backend} {version}" if isinstance(version, str) and version else f"{backend} (version not recorded)"
        variant = row.get("variant")
        return f"{text} [{variant}]" if isinstance(variant, str) and variant and not variant.startswith("(") else text
    return runs.apply(one, axis=1) if not runs.empty else pd.Series(dtype=object)


def history_table(runs: pd.DataFrame, metric: str = "t_sim_s", x: str = "date", resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One row per series and point (COLUMNS), from index.query's rows."""
    if metric not in METRICS:
        raise ValueError(f"--metric {metric!r}: allowed: {', '.join(METRICS)}")
    if x not in ("date", "version"):
        raise ValueError(f"--x {x!r}: allowed: date, version")
    if "variant" not in runs:
        runs = runs.assign(variant=None)
    ok = prepare(runs.assign(_source=runs["results_path"]), "campaign")
    ok["_x"] = ok["results_path"].astype(str) if x == "date" else version_label(ok)
    rows = []
    for key, part in ok.groupby(SERIES + ["_x"], sort=False, dropna=False):
        disturbed = part["_disturbed"].fillna(False).astype(bool)
        values = part.loc[~disturbed, metric].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        row = dict(zip(SERIES, key[:-1], strict=True)) | {
            "x": key[-1], "collected_at": str(part["collected_at"].min()),
            "campaigns": ", ".join(sorted(part["campaign"].astype(str).unique())), "n_runs": len(values),
            "n_disturbed": int(disturbed.sum()), "median": float(np.median(values)) if len(values) else np.nan,
            "ci_low": np.nan, "ci_high": np.nan}
        if len(values) >= MIN_RUNS:
            medians = Resampler(seed, (metric, *key), resamples).medians("runs", values)
            alpha = (1 - CONFIDENCE) / 2
            row["ci_low"], row["ci_high"] = (float(v) for v in np.quantile(medians, [alpha, 1 - alpha]))
        rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(["collected_at", "x"], kind="stable").reset_index(drop=True)


def series_label(row) -> str:
    return (f"{row['backend']} {int(row['nodes'])}x{int(row['tasks_per_node'])}x{int(row['threads_per_task'])} "
            f"on {row['machine']}, N x{row['n_scaling']:g} {row['drive']}")


def history_figure(table: pd.DataFrame, metric: str, x: str, baselines: dict | None = None):
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from spikescale.analysis import style

    style.apply()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if table.empty:
        ax.text(0.5, 0.5, "no indexed ok runs match", ha="center", va="center", transform=ax.transAxes)
        return fig
    if x == "date":
        at = {p: pd.Timestamp(t) for p, t in table.groupby("x")["collected_at"].min().items()}
    else:  # versions in the order first collected
        at = {v: i for i, v in enumerate(table.drop_duplicates("x")["x"])}
    for i, (key, part) in enumerate(table.groupby(SERIES, sort=False, dropna=False)):
        color = style.TOL_BRIGHT[i % len(style.TOL_BRIGHT)]
        xs = [at[v] for v in part["x"]]
        judged = part["ci_low"].notna().to_numpy()
        ax.plot(xs, part["median"], color=color, lw=1, alpha=0.6)
        ax.errorbar([p for p, j in zip(xs, judged) if j], part.loc[judged, "median"],
                    yerr=[part.loc[judged, "median"] - part.loc[judged, "ci_low"],
                          part.loc[judged, "ci_high"] - part.loc[judged, "median"]],
                    fmt="o", color=color, capsize=3, label=series_label(part.iloc[0]))
        ax.plot([p for p, j in zip(xs, judged) if not j], part.loc[~judged, "median"], "o", mfc="none", color=color)
        for ref in (baselines or {}).get("references", []):
            if ref["metric"] == metric and ref["machine"] == part.iloc[0]["machine"] and \
                    ref["backend"] == part.iloc[0]["backend"] and \
                    all(int(part.iloc[0][k]) == v for k, v in ref["shape"].items()):
                tol = ref.get("tolerance", baselines["tolerance"])
                ax.axhline(ref["value"], color=color, ls="--", lw=0.8)
                ax.axhline(ref["value"] * (1 + tol), color=color, ls=":", lw=0.8)
    if x == "date":
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("collected (UTC)")
    else:
        ax.set_xticks(list(at.values()), list(at.keys()), rotation=20, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(at) - 0.5)
        ax.set_xlabel("software version [variant]")
    ax.set_ylabel(f"{metric}, median" + (" (s)" if metric.endswith("_s") else " (MB)" if metric.endswith("_mb_max")
                                         else " (µJ)" if metric.endswith("_uj") else ""))
    ax.set_ylim(bottom=0)
    ax.set_title(f"history of {metric}: median and 95 % bootstrap interval per point (hollow: fewer than {MIN_RUNS} "
                 "runs)" + ("; dashed: baseline, dotted: its limit" if baselines else ""), fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _where(items: list[str]) -> dict:
    where = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--where {item!r}: write column=value or column=v1,v2")
        where[name] = value.split(",") if "," in value else value
    return where


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="docs/comparing.md#history")
    parser.add_argument("results_dir", type=Path, help="the results folder whose index.sqlite is read")
    parser.add_argument("--metric", default="t_sim_s", choices=list(METRICS))
    parser.add_argument("--x", default="date", choices=("date", "version"))
    parser.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE[,VALUE]",
                        help="only the runs whose column has (one of) the value(s); repeatable")
    parser.add_argument("--baseline", type=Path, help="draw this baseline file's references of the figure")
    parser.add_argument("--table", type=Path)
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    try:
        where = _where(args.where)
        runs = index.query(args.results_dir, where=where, columns=NEEDED)
        table = history_table(runs, args.metric, args.x)
        baselines = None
        if args.baseline:
            from spikescale.analysis.baselines import load_baselines

            baselines = load_baselines(args.baseline)
    except (ValueError, index.ResultsIndexError, ConfigError) as exc:  # each names what is wrong
        print(f"history: {exc}", file=sys.stderr)
        return 2
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.table, index=False, float_format="%.6g")
    from spikescale.analysis.plots import save

    save(history_figure(table, args.metric, args.x, baselines), args.png, args.pdf)
    print(table.to_string(index=False, columns=["backend", "nodes", "tasks_per_node", "threads_per_task", "x",
                                                "n_runs", "median", "ci_low", "ci_high"],
                          float_format=lambda v: f"{v:.4g}") if not table.empty else "no indexed ok runs match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
