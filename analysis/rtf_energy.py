"""Real-time factor against energy per synaptic event, beside the community's published
results: ``python -m spikescale.analysis.rtf_energy``.

The table is spikescale.analysis.rtf_energy_table's (what a row holds is said there), the
figure spikescale.analysis.rtf_energy_plot's.
"""

from __future__ import annotations

import sys

from spikescale.analysis.cli import run_cli
from spikescale.analysis.rtf_energy_plot import rtf_energy_figure
from spikescale.analysis.rtf_energy_table import rtf_energy_table


def main(argv=None) -> int:
    return run_cli(argv, __doc__.splitlines()[0], rtf_energy_table, rtf_energy_figure,
                   " | real-time factor and energy per synaptic event", (
                       "backend", "platform", "emulated", "n_scaling", "drive", "shape", "energy_kind", "rtf_kind", "n_runs",
                       "rtf_mean", "rtf_sd", "esyn_uj_mean", "esyn_uj_sd", "energy_unavailable_short"))


if __name__ == "__main__":
    sys.exit(main())
