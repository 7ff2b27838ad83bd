"""Full-scale PD14 on this machine: spikescale's NEST run beside the INM-6 reference.

Full scale is 77,169 neurons and 298,880,968 connections (DC drive). NEST stores at most
134,217,726 connections per virtual process, so a run needs >= 3 of them: here 4 threads on
the 2 cores (oversubscribed: the times are those of 2 cores, not of 4). One seed, spikes
recorded by both, 500 ms presimulation + --t-sim ms (1 s by default: 10 s, the recipe's
figure, would take about 7 minutes per run here and measures the same rate of work).

Run in turn, each in a fresh process: ours, then the reference (when installed, as for
reference_comparison.py). For each it prints the construction time (create +
connect), the RTF of the simulation phase, and the peak memory of its process tree
(resident set, sampled every 50 ms from outside, so both are measured alike; ours also
reports its own per-phase peak from the record). Then the rates check:

- with the same seed and the same number of virtual processes, NEST draws the same network
  and the same spikes: the two runs must produce identical spikes (sender and time step of
  every spike in the measured window), hence identical population rates;
- a run that differs in virtual processes or seed can only agree statistically: its
  population rates must lie within the seed-to-seed spread (reference_comparison.py's
  criterion, printed there); this script runs the identical case only.

It also prints the estimate spikescale.estimate gives before submission, beside the
measured figures.

    .venvs/workflow/bin/python tests/benchmarks/full_scale.py [--threads 4] [--seed 55] [--t-sim 1000]
        [--reference-python PATH] [--no-reference]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

# harness_overhead and reference_comparison lie next to this script, whose folder Python puts first on sys.path
from harness_overhead import BUSY_ELSEWHERE_LIMIT, NEST_PYTHON
from reference_comparison import DRIVER, in_window, reference_python, run_reference, run_spikescale, same_spikes
from spikescale import estimate
from spikescale.models.pd14 import derived
from spikescale.models.pd14.params import POPULATIONS

# The harness refuses more threads than the CPUs it may use unless the machine allows it, as
# config/machine/local-oversubscribed.yaml does for full_scale_local.
OVERSUBSCRIBED = {"machine": {"name": "local-oversubscribed", "allow_oversubscription": True}}


class TreePeak:
    """Peak resident memory (MB) of this process's children and their descendants, sampled
    every interval_s (50 ms) while the block runs."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            total = 0
            for p in me.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 1e6)
            time.sleep(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=55)
    ap.add_argument("--drive", choices=("dc", "poisson"), default="dc")
    ap.add_argument("--t-presim", type=float, default=500.0, help="ms")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="ms")
    ap.add_argument("--reference-python", type=Path, default=None)
    ap.add_argument("--no-reference", action="store_true", help="run ours only")
    ap.add_argument("--nest-python", type=Path, default=NEST_PYTHON)
    args = ap.parse_args(argv)
    # what run_reference and run_spikescale read
    args.n_scaling = args.k_scaling = 1.0
    args.seeds = [args.seed]

    net = derived.derive(1.0, 1.0, args.drive, False)
    spec = {"backend": "nest", "n_scaling": 1.0, "k_scaling": 1.0, "drive": args.drive, "thalamic_input": False,
            "t_presim_ms": args.t_presim, "t_sim_ms": args.t_sim, "dt_ms": 0.1, "nodes": 1, "tasks_per_node": 1,
            "threads_per_task": args.threads}
    mem_est, mem_basis = estimate.memory_per_node_mb(spec)
    wall_est, time_basis = estimate.walltime_s(spec, {"cores_per_node": os.cpu_count() or 1})
    print(f"PD14 full scale: {net.n_neurons:,} neurons, {net.connections_total():,} connections, {args.drive} drive, "
          f"{args.threads} threads on {os.cpu_count()} cores, seed {args.seed}, t_presim {args.t_presim:g} ms, "
          f"t_sim {args.t_sim:g} ms, spikes recorded")
    print(f"estimate before submission: {mem_est:,.0f} MB ({mem_basis}); {wall_est / 60:.1f} min ({time_basis})\n")

    ref_python = None if args.no_reference else reference_python(args.reference_python)
    if ref_python is not None and not ref_python.exists():
        print(f"reference interpreter {ref_python} not found (tests/benchmarks/README.md, reference_comparison.py): "
              "running ours only")
        ref_python = None

    results = {}
    with tempfile.TemporaryDirectory(prefix="spikescale-fullscale-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "reference_driver.py").write_text(DRIVER)
        # ours first: a run of ours that fails says so before the reference's minutes are spent
        with TreePeak() as peak:
            results["spikescale"] = run_spikescale(args, args.seed, True, tmp, net.num_neurons, OVERSUBSCRIBED)
        results["spikescale"]["tree_peak_mb"] = peak.peak_mb
        print(f"ours done ({results['spikescale']['t_sim_s']:.1f} s simulation phase)", flush=True)
        if ref_python is not None:
            with TreePeak() as peak:
                results["reference"] = run_reference(ref_python, args, args.seed, tmp)
            results["reference"]["tree_peak_mb"] = peak.peak_mb
            print(f"reference done ({results['reference']['t_sim_s']:.1f} s simulation phase)", flush=True)
        record_peak = _record_peak_mb(tmp)

    t_model_s = args.t_sim / 1000.0
    print(f"{'':<12} {'create s':>9} {'connect s':>10} {'construct s':>12} {'presim s':>9} {'sim s':>8} {'RTF':>7} "
          f"{'peak MB':>9} {'connections':>12} {'others CPU':>10}")
    for name, r in results.items():
        construct = r["t_create_s"] + r["t_connect_s"]
        print(f"{name:<12} {r['t_create_s']:9.1f} {r['t_connect_s']:10.1f} {construct:12.1f} {r['t_presim_s']:9.1f} "
              f"{r['t_sim_s']:8.1f} {r['t_sim_s'] / t_model_s:7.1f} {r['tree_peak_mb']:9,.0f} "
              f"{r['num_connections']:>12,} {100 * r['elsewhere']:9.0f}%")
    print(f"ours, peak of the harness process as its record states it (mem_peak_mb_max): {record_peak:,.0f} MB")
    print(f"estimate / measured peak (ours, process tree): {mem_est / results['spikescale']['tree_peak_mb']:.2f}")
    busy = [n for n, r in results.items() if r["elsewhere"] > BUSY_ELSEWHERE_LIMIT]
    if busy:
        print(f"NOTE: other processes used > {BUSY_ELSEWHERE_LIMIT:.0%} of the CPUs during: {', '.join(busy)}; "
              "those times are inflated")

    ours = results["spikescale"]
    print("\npopulation rates (Hz) in the measured window:")
    header = f"  {'pop':<5} {'ours':>8}" + (f" {'reference':>10} {'diff':>8}" if "reference" in results else "")
    print(header)
    for i, pop in enumerate(POPULATIONS):
        line = f"  {pop:<5} {ours['rates'][i]:8.3f}"
        if "reference" in results:
            ref_rate = results["reference"]["rates"][i]
            line += f" {ref_rate:10.3f} {ours['rates'][i] - ref_rate:+8.3f}"
        print(line)
    if "reference" not in results:
        print("\nSKIPPED: rates check (no reference)")
        return 0
    ref = results["reference"]
    a, b = (in_window(x["spikes"], args.t_presim, args.t_sim) for x in (ref, ours))
    identical = same_spikes(a, b)
    print(f"\nsame seed ({args.seed}) and virtual processes ({args.threads}): spikes must be identical")
    print(f"{'PASS' if identical else 'FAIL'}: identical spikes in the window (reference {len(a[0]):,}, "
          f"ours {len(b[0]):,}); population rates equal: {bool(np.array_equal(ours['rates'], ref['rates']))}")
    # NEST counts the spike recorder's connections too: one per neuron, on both sides
    expected = net.connections_total() + net.n_neurons
    print(f"{'PASS' if ours['num_connections'] == ref['num_connections'] == expected else 'FAIL'}: "
          f"connections ours {ours['num_connections']:,}, reference {ref['num_connections']:,}, "
          f"derived {net.connections_total():,} + {net.n_neurons:,} to the spike recorder")
    return 0


def _record_peak_mb(tmp: Path) -> float:
    from spikescale.record import read_summary

    [record] = tmp.glob("ours-*.h5")
    return float(read_summary(record)["summary.mem_peak_mb_max"])


if __name__ == "__main__":
    sys.exit(main())
