"""Weak-scaling table and figure of one campaign: ``python -m analysis.weak_scaling``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis.plots import save, weak_scaling_figure
from analysis.scaling import weak_scaling_table
from analysis.strong_scaling import describe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True, type=Path, help="runs.csv of the campaign")
    parser.add_argument("--table", required=True, type=Path)
    parser.add_argument("--png", required=True, type=Path)
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    runs = pd.read_csv(args.runs)
    table = weak_scaling_table(runs)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False, float_format="%.6g")
    save(weak_scaling_figure(table, describe(runs) + " | weak scaling"), args.png, args.pdf)
    print(table.to_string(index=False, columns=[c for c in ("backend", "nodes", "tasks_per_node",
          "threads_per_task", "n_scaling", "n_runs", "t_sim_s_mean", "t_sim_s_sd", "weak_efficiency_mean",
          "rate_mean_hz_mean") if c in table.columns], float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
