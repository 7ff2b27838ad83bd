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

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness_overhead import BUSY_ELSEWHERE_LIMIT, NEST_PYTHON, REPO, make_spec, run_ours  # noqa: E402

SPINNAKER_PYTHON = REPO / ".venvs" / "spinnaker" / "bin" / "python"
COLUMNS = ("t_construct_s", "t_compile_s", "t_load_s", "t_presim_s", "t_sim_s", "rtf", "rtf_modelled", "rate_mean_hz")
CONTEXT = {"machine": {"name": "local", "spinnaker": {"fallback": "emulate"}}}


def _number(value):
    """A summary figure, or None where the backend has none (NEST: no compile phase)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=2, help="NEST's threads (the cores both get)")
    ap.add_argument("--scale", type=float, default=0.1, help="N_scaling = K_scaling")
    ap.add_argument("--t-presim", type=float, default=500.0, help="ms")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="ms")
    args = ap.parse_args(argv)
    pythons = {"nest": NEST_PYTHON, "spinnaker": SPINNAKER_PYTHON}
    for python in pythons.values():
        if not python.exists():
            print(f"SKIPPED: {python} missing (run `make env`)")
            return 0

    print(f"emulated SpiNNaker vs NEST: PD14 scale {args.scale}, poisson drive, {args.threads} core(s), "
          f"t_presim {args.t_presim:g} ms, t_sim {args.t_sim:g} ms, seeds {args.seeds}, no spike recording")
    rows = []
    with tempfile.TemporaryDirectory(prefix="spikescale-spinnaker-vs-nest-") as tmp:
        for seed in args.seeds:
            for backend in ("nest", "spinnaker"):
                spec = make_spec(n_scaling=args.scale, k_scaling=args.scale, drive="poisson",
                                 t_presim_ms=args.t_presim, t_sim_ms=args.t_sim, threads=args.threads, seed=seed,
                                 record_spikes=False)
                spec["backend"] = backend
                spec["run_id"] = spec["run_id"].replace("nest-", f"{backend}-", 1)
                record, wall, elsewhere = run_ours(spec, Path(tmp) / f"{backend}-{seed}.h5", pythons[backend],
                                                   context=CONTEXT)
                s = record["summary"]["attrs"]
                rows.append({"backend": backend, "seed": seed, "wall": wall, "elsewhere": elsewhere,
                             **{c: _number(s.get(c)) for c in COLUMNS}})
                print(f"  {backend} seed {seed}: RTF {s['rtf']:.3f}, run {wall:.1f} s", flush=True)

    def fmt(v):
        return f"{v:10.3f}" if isinstance(v, (int, float)) else f"{'-':>10}"

    print(f"\n{'backend':>9} {'seed':>4} " + " ".join(f"{c:>12}" for c in COLUMNS) + f" {'wall_s':>8} {'elsewhere':>9}")
    for r in rows:
        print(f"{r['backend']:>9} {r['seed']:>4} " + " ".join(f"{fmt(r[c]):>12}" for c in COLUMNS)
              + f" {r['wall']:8.1f} {100 * r['elsewhere']:8.0f}%")
    means = {}
    for backend in ("nest", "spinnaker"):
        sel = [r for r in rows if r["backend"] == backend]
        means[backend] = {c: statistics.fmean(r[c] for r in sel) if sel[0][c] is not None else None for c in COLUMNS}
        print(f"{backend:>9} {'mean':>4} " + " ".join(f"{fmt(means[backend][c]):>12}" for c in COLUMNS))
    ratio = means["spinnaker"]["rtf"] / means["nest"]["rtf"]
    print(f"\nRTF emulator / RTF nest = {ratio:.2f} (measured on this host, the same {args.threads} core(s))")
    print(f"RTF of the board itself: {means['spinnaker']['rtf_modelled']:g} (modelled: time_scale_factor x model time)")
    if any(r["elsewhere"] > BUSY_ELSEWHERE_LIMIT for r in rows):
        print(f"NOTE: other processes used > {BUSY_ELSEWHERE_LIMIT:.0%} of the CPUs during some runs: "
              "their times are inflated; rerun on a quiet machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
