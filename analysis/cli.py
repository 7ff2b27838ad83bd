"""The command line every scaling analysis shares: runs.csv in; table (CSV) and figure
(PNG, PDF) out; the table's main columns printed. The analyses differ only in what they
hand to run_cli, so each of their modules stays a table, a figure and a main()."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spikescale.analysis.plots import save
from spikescale.analysis.scaling import performance_runs


def describe(runs: pd.DataFrame) -> str:
    """Figure title: what was simulated, and which drive (every result must say it)."""
    ok = runs[runs["status"] == "ok"]
    validation = len(ok) - len(performance_runs(ok))  # runs that recorded spikes, left out of the figure
    src = ok if not ok.empty else runs
    parts = [f"campaign {src['campaign'].iloc[0]}" if not src.empty else "empty campaign"]
    if not src.empty:
        drives = ", ".join(sorted(src["drive"].astype(str).unique()))
        t_model = ", ".join(f"{t:g}" for t in sorted(src["t_model_s"].unique()))
        parts.append(f"PD14, {drives} drive, {t_model} s model time")
    failed = int((runs["status"] != "ok").sum())
    parts.append(f"{len(ok) - validation} ok run(s)" + (f", {failed} failed (not shown)" if failed else "")
                 + (f", {validation} validation run(s) not shown" if validation else ""))
    return " | ".join(parts)


def run_cli(argv, doc: str, make_table, make_figure, title_suffix: str, printed: tuple) -> int:
    """Parse the arguments, make the table from runs.csv and the figure from the table,
    write both, print the `printed` columns the table has."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--runs", required=True, type=Path, help="runs.csv of the campaign")
    parser.add_argument("--table", required=True, type=Path)
    parser.add_argument("--png", required=True, type=Path)
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    runs = pd.read_csv(args.runs)
    table = make_table(runs)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False, float_format="%.6g")
    save(make_figure(table, describe(runs) + title_suffix), args.png, args.pdf)
    print(table.to_string(index=False, columns=[c for c in printed if c in table.columns],
                          float_format=lambda v: f"{v:.3g}"))
    return 0
