"""Brian2 (cpp_standalone, OpenMP) against NEST on the same cores: RTF side by side.

PD14 at N_scaling = K_scaling = 0.1 (default), Poisson drive, 500 ms presimulation + 1000 ms,
performance runs (no spike recording), the same thread count for both; each run is a fresh
harness process as in a campaign, NEST and Brian2 alternating, one at a time. Prints per
run and as means: the simulation phase (RTF), the construction (create + connect) and, for
Brian2, code generation + compilation and loading, then the ratio of the mean RTFs.

    .venvs/workflow/bin/python tests/benchmarks/brian2_vs_nest.py [--seeds 1 2] [--threads 2] [--scale 0.1]
"""

from __future__ import annotations

import sys

from against_nest import run_against_nest  # noqa: E402
from harness_overhead import REPO  # noqa: E402

BRIAN2_PYTHON = REPO / ".venvs" / "brian2" / "bin" / "python"
COLUMNS = ("t_construct_s", "t_compile_s", "t_load_s", "t_presim_s", "t_sim_s", "rtf", "rate_mean_hz")


def main(argv=None) -> int:
    args, means = run_against_nest(argv, description=__doc__.splitlines()[0], backend="brian2", python=BRIAN2_PYTHON,
                                   columns=COLUMNS, title="Brian2 vs NEST")
    if means is not None:
        ratio = means["brian2"]["rtf"] / means["nest"]["rtf"]
        print(f"\nRTF brian2 / RTF nest = {ratio:.2f} ({args.threads} thread(s) each, the same cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
