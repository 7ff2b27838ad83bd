"""One backend against NEST on the same cores, RTF side by side: the part that
brian2_vs_nest.py and spinnaker_emulator_vs_nest.py share.

PD14 at N_scaling = K_scaling = --scale, Poisson drive, --t-presim + --t-sim ms, performance
runs (no spike recording); each run is a fresh harness process as in a campaign, NEST and the
other backend alternating per seed, one at a time. Prints every run's phase times and the
means; the caller prints its ratios from the means it gets back.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness_overhead import BUSY_ELSEWHERE_LIMIT, NEST_PYTHON, make_spec, run_ours  # noqa: E402


def _number(value):
    """A summary figure, or None where the backend has none (NEST: no compile phase)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _fmt(v) -> str:
    return f"{v:12.3f}" if isinstance(v, (int, float)) else f"{'-':>12}"


def run_against_nest(argv, *, description: str, backend: str, python: Path, columns: tuple[str, ...],
                     title: str, threads_help: str = "threads of each backend", context: dict | None = None):
    """Parse the common options, run NEST and `backend` alternately, print the table.
    Returns (args, {backend: {column: mean}}), or (args, None) when an environment is missing."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=2, help=threads_help)
    ap.add_argument("--scale", type=float, default=0.1, help="N_scaling = K_scaling")
    ap.add_argument("--t-presim", type=float, default=500.0, help="ms")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="ms")
    args = ap.parse_args(argv)
    pythons = {"nest": NEST_PYTHON, backend: python}
    for path in pythons.values():
        if not path.exists():
            print(f"SKIPPED: {path} missing (run `make env`)")
            return args, None

    print(f"{title}: PD14 scale {args.scale}, poisson drive, {args.threads} thread(s), "
          f"t_presim {args.t_presim:g} ms, t_sim {args.t_sim:g} ms, seeds {args.seeds}, no spike recording")
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"spikescale-{backend}-vs-nest-") as tmp:
        for seed in args.seeds:
            for name in pythons:
                spec = make_spec(n_scaling=args.scale, k_scaling=args.scale, drive="poisson",
                                 t_presim_ms=args.t_presim, t_sim_ms=args.t_sim, threads=args.threads, seed=seed,
                                 record_spikes=False)
                spec["backend"] = name
                spec["run_id"] = spec["run_id"].replace("nest-", f"{name}-", 1)
                record, wall, elsewhere = run_ours(spec, Path(tmp) / f"{name}-{seed}.h5", pythons[name],
                                                   context=context if name == backend else None)
                s = record["summary"]["attrs"]
                rows.append({"backend": name, "seed": seed, "wall": wall, "elsewhere": elsewhere,
                             **{c: _number(s.get(c)) for c in columns}})
                print(f"  {name} seed {seed}: RTF {s['rtf']:.3f}, run {wall:.1f} s", flush=True)

    print(f"\n{'backend':>10} {'seed':>4} " + " ".join(f"{c:>12}" for c in columns) + f" {'wall_s':>8} {'elsewhere':>9}")
    for r in rows:
        print(f"{r['backend']:>10} {r['seed']:>4} " + " ".join(_fmt(r[c]) for c in columns)
              + f" {r['wall']:8.1f} {100 * r['elsewhere']:8.0f}%")
    means = {}
    for name in pythons:
        sel = [r for r in rows if r["backend"] == name]
        means[name] = {c: statistics.fmean(r[c] for r in sel) if sel[0][c] is not None else None for c in columns}
        print(f"{name:>10} {'mean':>4} " + " ".join(_fmt(means[name][c]) for c in columns))
    if any(r["elsewhere"] > BUSY_ELSEWHERE_LIMIT for r in rows):
        print(f"NOTE: other processes used > {BUSY_ELSEWHERE_LIMIT:.0%} of the CPUs during some runs: "
              "their times are inflated; rerun on a quiet machine")
    return args, means
