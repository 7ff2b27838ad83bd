"""Whether `compare` keeps up with two 10,000-run campaigns (target: under 10 s, table and
figure included).

Writes two synthetic runs.csv files with every runs.csv column (spikescale.columns): NEST
and Brian2 at 1, 2, 4 and 8 threads, 250 seeds x 5 repetitions each = 10,000 runs per
campaign, 1 % failed; the candidate's simulation phase is 3 % slower, every other figure
the same; energy per synaptic event filled (so all five metrics are bootstrapped). Then it
times the real command as a workflow job runs it, a fresh process:

    python -m spikescale.analysis.compare <a> <b> --table compare.csv --png compare.png

and prints the wall time against the target, the verdicts, and the share of the CPUs other
processes used meanwhile (a timing taken beside other work is inflated).

    .venvs/workflow/bin/python tests/benchmarks/compare_10k.py [--runs 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# harness_overhead lies next to this script, whose folder Python puts first on sys.path
from harness_overhead import BUSY_ELSEWHERE_LIMIT, timed_subprocess
from spikescale.columns import NAMES

TARGET_S = 10.0
BACKENDS = ("nest", "brian2")
THREADS = (1, 2, 4, 8)
REPETITIONS = 5


def synthetic_campaign(name: str, runs: int, t_sim_factor: float, seed: int) -> pd.DataFrame:
    """`runs` rows of runs.csv (rounded up to whole seeds); times follow the thread count."""
    rng = np.random.default_rng(seed)
    per_seed = len(BACKENDS) * len(THREADS) * REPETITIONS
    seeds = -(-runs // per_seed)
    grid = np.array([(b, t, s, r) for b in range(len(BACKENDS)) for t in THREADS for s in range(1, seeds + 1)
                     for r in range(REPETITIONS)], dtype=object)
    n = len(grid)
    threads = grid[:, 1].astype(int)
    noise = np.exp(rng.normal(0, 0.05, n))
    t_sim = 20.0 / threads * (1 + 0.5 * grid[:, 0].astype(int)) * noise * t_sim_factor
    frame = pd.DataFrame({c: np.nan for c in NAMES}, index=range(n))
    frame = frame.assign(
        run_id=[f"{name}-{i}" for i in range(n)], campaign=name, backend=[BACKENDS[b] for b in grid[:, 0]],
        platform="cpu", emulated=False, model="pd14", n_scaling=0.1, k_scaling=0.1, drive="poisson", t_model_s=1.0,
        seed=grid[:, 2].astype(int), repetition=grid[:, 3].astype(int), nodes=1, tasks_per_node=1,
        threads_per_task=threads, status=np.where(rng.random(n) < 0.01, "failed", "ok"), t_sim_s=t_sim, rtf=t_sim,
        t_construct_s=3.0 * np.exp(rng.normal(0, 0.05, n)), mem_peak_mb_max=400 * np.exp(rng.normal(0, 0.02, n)),
        esyn_uj=2.0 * t_sim / 10, machine="vm", record_spikes=False, virtual_processes=threads,
        energy_source="measured: rapl", nest_version="3.10.0")
    return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and leave the campaigns there")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="compare10k-"))
    for name, factor, seed in (("before", 1.0, 1), ("after", 1.03, 2)):
        (work / name).mkdir(parents=True, exist_ok=True)
        synthetic_campaign(name, args.runs, factor, seed).to_csv(work / name / "runs.csv", index=False)
    sizes = [len(pd.read_csv(work / n / "runs.csv", usecols=["run_id"])) for n in ("before", "after")]
    print(f"two campaigns of {sizes[0]:,} and {sizes[1]:,} runs, {len(NAMES)} columns, in {work}")
    cmd = [sys.executable, "-m", "spikescale.analysis.compare", str(work / "before"), str(work / "after"),
           "--table", str(work / "compare.csv"), "--png", str(work / "compare.png")]
    proc, wall, elsewhere = timed_subprocess(cmd)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        print("FAIL: the command failed")
        return 1
    print("\n".join(line for line in proc.stdout.splitlines() if " against " in line))
    table = pd.read_csv(work / "compare.csv")
    t_sim = table[table["metric"] == "t_sim_s"]
    print(f"t_sim_s ratios (true 1.03): {', '.join(f'{r:.3f}' for r in t_sim['ratio'])}; "
          f"verdicts: {', '.join(sorted(set(t_sim['verdict'])))}")
    if elsewhere is not None and elsewhere > BUSY_ELSEWHERE_LIMIT:
        print(f"NOTE: other processes used {elsewhere:.0%} of the CPUs meanwhile: the time is inflated")
    verdict = "PASS" if wall < TARGET_S else "FAIL"
    print(f"{verdict}: compare of {sizes[0]:,} + {sizes[1]:,} runs, table and figure, took {wall:.2f} s "
          f"(target < {TARGET_S:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
