"""Energy sampler overhead: simulation time with the 10 Hz sampler on, against off.

One process builds PD14 once (NEST, as the harness does), then simulates it in chunks,
the sampler on for some chunks and off for others in ABBA order (on, off, off, on, ...), and
compares the wall time of the chunks: median of on over median of off. Side by side in one
run and on one network, so that the comparison is not drowned by what differs between runs
(on this 2-core VM, separate runs of the same spec differ by up to 10 %). The sampler is
the harness's own (spikescale.energy.sampler: a separate process reading every meter at
10 Hz), started before and stopped after each "on" chunk.

Here (no powercap) it reads a file tree laid out like sysfs (tests/fake_powercap.py: two
sockets, package and DRAM: the same open/read/close per zone as sysfs); with --real it reads
this machine's /sys/class/powercap and NVML as a run would.
Target: ratio < 1.01.

    .venvs/workflow/bin/python tests/benchmarks/energy_sampler_overhead.py [--rounds 4] [--chunk-ms 500] [--real]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

def _load_fake_powercap():
    """tests/fake_powercap.py, a test utility beside the tests rather than in the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_powercap", HERE.parent / "fake_powercap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FakePowercap = _load_fake_powercap().FakePowercap

NEST_PYTHON = REPO / ".venvs" / "nest" / "bin" / "python"
TARGET_RATIO = 1.01

DRIVER = r"""
import json, statistics, sys, time
from spikescale.backends.nest import NestBackend
from spikescale.energy.discover import discover
from spikescale.energy.sampler import Sampler

args = json.loads(sys.argv[1])
backend = NestBackend(args["spec"])
backend.import_simulator(); backend.setup(); backend.create(); backend.connect()
nest = backend.nest
recipe = {"energy": args["energy"], "busy_cores": args["spec"]["threads_per_task"]}
meters, unavailable = discover(args["energy"], recipe["busy_cores"])
if not meters:
    sys.exit("no energy meter: " + "; ".join(u.source + ": " + u.reason for u in unavailable))
nest.Prepare()
nest.Run(args["warmup_ms"])  # past the start-up transient, not timed
rows = []
for label in ["on", "off", "off", "on"] * args["rounds"]:
    sampler = Sampler(meters, 1.0 / args["hz"], recipe).start() if label == "on" else None
    time.sleep(0.3)  # the sampler process is up and sampling before the chunk starts
    t0 = time.perf_counter()
    nest.Run(args["chunk_ms"])
    wall = time.perf_counter() - t0
    extra = {}
    if sampler is not None:
        sampler.stop()
        extra = {"readings": len(sampler.readings), "sampler_cpu_s": sampler.sampler_cpu_s}
    rows.append({"label": label, "wall_s": wall, **extra})
nest.Cleanup()
print(json.dumps({"rows": rows, "meters": [m.source + " " + m.scope for m in meters]}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="ABBA rounds: 2 chunks on and 2 off each")
    ap.add_argument("--warmup-ms", type=float, default=1000.0, help="model time simulated first, untimed")
    ap.add_argument("--chunk-ms", type=float, default=500.0, help="model time per chunk")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", action="store_true", help="read this machine's powercap and NVML, not a fake tree")
    args = ap.parse_args(argv)
    if not NEST_PYTHON.exists():
        print(f"SKIPPED: {NEST_PYTHON} missing (run `make env`)")
        return 0
    spec = {"run_id": "bench", "campaign": "benchmark", "backend": "nest", "machine": "local", "model": "pd14",
            "n_scaling": args.scale, "k_scaling": args.scale, "drive": "poisson", "t_presim_ms": 0.0,
            "t_sim_ms": args.chunk_ms, "dt_ms": 0.1, "thalamic_input": False, "record_spikes": False, "seed": 1,
            "repetition": 0, "nodes": 1, "tasks_per_node": 1, "threads_per_task": args.threads}
    with tempfile.TemporaryDirectory(prefix="spikescale-energy-bench-") as tmp:
        env = dict(os.environ)
        if not args.real:
            FakePowercap(Path(tmp) / "powercap", sockets=(0, 1))
            env["SPIKESCALE_POWERCAP_ROOT"] = str(Path(tmp) / "powercap")
        energy = {"rapl": True, "nvml": args.real, "sampling_hz": args.hz}
        print(f"energy sampler overhead: PD14 scale {args.scale}, {args.threads} thread(s), one network, "
              f"{4 * args.rounds} chunks of {args.chunk_ms:g} ms in ABBA order, sampler at {args.hz:g} Hz reading "
              f"{'this machine' if args.real else 'a fake sysfs tree'}")
        payload = {"spec": spec, "energy": energy, "hz": args.hz, "chunk_ms": args.chunk_ms, "rounds": args.rounds,
                   "warmup_ms": args.warmup_ms}
        proc = subprocess.run([str(NEST_PYTHON), "-c", DRIVER, json.dumps(payload)], env=env, capture_output=True,
                              text=True, timeout=3600)
    if proc.returncode != 0:
        print(f"FAIL: the benchmark crashed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return 1
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"meters: {', '.join(result['meters'])}")
    for i, row in enumerate(result["rows"], 1):
        extra = (f", {row['readings']} readings, sampler process CPU {row['sampler_cpu_s']:.3f} s"
                 if row["label"] == "on" else "")
        print(f"chunk {i:2d} sampler {row['label']:>3}: {row['wall_s']:.3f} s{extra}")
    on = sorted(r["wall_s"] for r in result["rows"] if r["label"] == "on")
    off = sorted(r["wall_s"] for r in result["rows"] if r["label"] == "off")
    median = lambda xs: (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2  # noqa: E731
    ratio = median(on) / median(off)
    spread = (max(off) - min(off)) / median(off)
    print(f"\nmedian chunk: on {median(on):.3f} s, off {median(off):.3f} s; spread of the off chunks {100 * spread:.1f} %")
    verdict = "PASS" if ratio < TARGET_RATIO else "FAIL"
    print(f"{verdict}: sampler-on / sampler-off simulation time = {ratio:.4f} (target < {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
