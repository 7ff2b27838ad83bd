"""Strong-scaling table and figure of one campaign: ``python -m spikescale.analysis.strong_scaling``."""

from __future__ import annotations

import sys

from spikescale.analysis.cli import run_cli
from spikescale.analysis.plots import strong_scaling_figure
from spikescale.analysis.scaling import strong_scaling_table


def main(argv=None) -> int:
    return run_cli(argv, __doc__, strong_scaling_table, strong_scaling_figure, "", (
        "backend", "nodes", "tasks_per_node", "threads_per_task", "n_runs", "t_construct_s_mean", "t_sim_s_mean",
        "t_sim_s_sd", "rtf_mean", "speedup_mean", "efficiency_mean"))


if __name__ == "__main__":
    sys.exit(main())
