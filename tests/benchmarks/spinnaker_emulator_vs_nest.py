"""The SpiNNaker emulator against NEST on the same cores: RTF side by side.

PD14 at N_scaling = K_scaling = 0.1 (default), Poisson drive, 500 ms presimulation + 1000 ms,
performance runs (no spike recording); each run is a fresh harness process as in a campaign,
NEST and the emulated SpiNNaker alternating, one at a time. Both get the same cores: NEST
runs with --threads threads; the emulator is one numpy process (the second core is its
for nothing). Prints per run and as means: the simulation phase (RTF of the host), the
construction, sPyNNaker's mapping on the virtual board (compile), then the ratio of the mean
RTFs. The board's own RTF (modelled: its time_scale_factor) is printed beside, labelled.

    .venvs/workflow/bin/python tests/benchmarks/spinnaker_emulator_vs_nest.py [--seeds 1 2] [--threads 2] [--scale 0.1]
"""

from __future__ import annotations

import sys

from against_nest import run_against_nest  # noqa: E402
from harness_overhead import REPO  # noqa: E402

SPINNAKER_PYTHON = REPO / ".venvs" / "spinnaker" / "bin" / "python"
COLUMNS = ("t_construct_s", "t_compile_s", "t_load_s", "t_presim_s", "t_sim_s", "rtf", "rtf_modelled", "rate_mean_hz")
CONTEXT = {"machine": {"name": "local", "spinnaker": {"fallback": "emulate"}}}


def main(argv=None) -> int:
    args, means = run_against_nest(argv, description=__doc__.splitlines()[0], backend="spinnaker",
                                   python=SPINNAKER_PYTHON, columns=COLUMNS, title="emulated SpiNNaker vs NEST",
                                   threads_help="NEST's threads (the cores both get)", context=CONTEXT)
    if means is not None:
        ratio = means["spinnaker"]["rtf"] / means["nest"]["rtf"]
        print(f"\nRTF emulator / RTF nest = {ratio:.2f} (measured on this host, the same {args.threads} core(s))")
        print(f"RTF of the board itself: {means['spinnaker']['rtf_modelled']:g} "
              "(modelled: time_scale_factor x model time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
