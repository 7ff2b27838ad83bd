"""GeNN 5 (PyGeNN, the `genn` backend) against NEST on the same core: RTF, compilation and
peak memory side by side.

PD14 at N_scaling = K_scaling = 0.1 (default), Poisson drive, 500 ms presimulation + 1000 ms,
performance runs (no spike recording), one thread each (GeNN's single_threaded_cpu backend
has one); each run is a fresh harness process as in a campaign, NEST and GeNN alternating,
one at a time. Prints per run and as means: construction (create + connect), GeNN's code
generation + compilation and loading, presimulation, simulation, RTF, mean rate and peak
memory (RSS of the harness process, the maximum over phases), then the ratios of the means.

    .venvs/workflow/bin/python tests/benchmarks/genn_vs_nest.py [--seeds 1 2] [--scale 0.1] [--precision double]
"""

from __future__ import annotations

import sys

from against_nest import run_against_nest
from harness_overhead import REPO

GENN_PYTHON = REPO / ".venvs" / "genn" / "bin" / "python"
COLUMNS = ("t_construct_s", "t_compile_s", "t_load_s", "t_presim_s", "t_sim_s", "rtf", "rate_mean_hz",
           "mem_peak_mb_max")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    precision = "double"
    if "--precision" in argv:  # GeNN's scalar type (config/software: pygenn.precision)
        i = argv.index("--precision")
        precision = argv[i + 1]
        del argv[i:i + 2]
    if not any(a.startswith("--threads") for a in argv):
        argv += ["--threads", "1"]
    context = {"software": {"versions": {"pygenn": "5.4.0"}, "pygenn": {"precision": precision}}}
    args, means = run_against_nest(argv, description=__doc__.splitlines()[0], backend="genn", python=GENN_PYTHON,
                                   columns=COLUMNS, title=f"GeNN ({precision}) vs NEST", context=context,
                                   threads_help="threads of each backend (GeNN's CPU backend: 1)")
    if means is not None:
        g, n = means["genn"], means["nest"]
        print(f"\nRTF genn / RTF nest = {g['rtf'] / n['rtf']:.2f} ({args.threads} thread(s) each, the same core)")
        print(f"GeNN compile {g['t_compile_s']:.1f} s + load {g['t_load_s']:.2f} s; construction genn "
              f"{g['t_construct_s']:.2f} s, nest {n['t_construct_s']:.2f} s")
        print(f"peak memory genn / nest = {g['mem_peak_mb_max'] / n['mem_peak_mb_max']:.2f} "
              f"({g['mem_peak_mb_max']:.0f} MB / {n['mem_peak_mb_max']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
