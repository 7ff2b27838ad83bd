"""Weak-scaling table and figure of one campaign: ``python -m spikescale.analysis.weak_scaling``."""

from __future__ import annotations

import sys

from spikescale.analysis.cli import run_cli
from spikescale.analysis.plots import weak_scaling_figure
from spikescale.analysis.scaling import weak_scaling_table


def main(argv=None) -> int:
    return run_cli(argv, __doc__, weak_scaling_table, weak_scaling_figure, " | weak scaling", (
        "backend", "nodes", "tasks_per_node", "threads_per_task", "n_scaling", "n_runs", "t_sim_s_mean",
        "t_sim_s_sd", "weak_efficiency_mean", "rate_mean_hz_mean"))


if __name__ == "__main__":
    sys.exit(main())
