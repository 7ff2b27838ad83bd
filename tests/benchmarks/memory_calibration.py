"""Calibrate the per-backend memory model that refuses runs too large for a machine.

Runs each backend's harness, one process at a time, at three PD14 scales (Poisson drive,
100 ms + 100 ms, one thread, one seed), reads the peak memory of the run's process from its
record, and fits

    mem_peak_mb (of the process tree, sampled every 20 ms) = base_mb + connections * bytes_per_connection / 1e6

by least squares. It prints the fitted constants beside the ones spikescale.resources uses,
and the relative error of those constants at each measured point. Peak memory does not
depend on how busy the machine is, so unlike the timing benchmarks this one may run beside
other work.

    .venvs/workflow/bin/python tests/benchmarks/memory_calibration.py [--scales 0.05 0.1 0.2]
        [--backends nest brian2 genn spinnaker]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# full_scale lies next to this script, whose folder Python puts first on sys.path
from full_scale import TreePeak
from spikescale import estimate
from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.jobs import harness_argv, run_context
from spikescale.models.pd14 import derived
from spikescale.plan import make_run_id, plan_runs
from spikescale.record import read_summary
from spikescale.software import interpreter

REPO = Path(__file__).resolve().parents[2]
# the campaign whose software entries (and so environments) each backend runs with
CAMPAIGN_OF = {"nest": "default", "brian2": "default", "spinnaker": "default", "genn": "genn_local"}


def spec_and_context(backend: str, scale: float) -> tuple[dict, dict, str]:
    campaign = load_campaign(CAMPAIGN_OF[backend], REPO / "config")
    run = next(r for r in plan_runs(campaign) if r.backend == backend and r.threads_per_task == 1)
    spec = run.spec() | {"n_scaling": scale, "k_scaling": scale, "drive": "poisson", "t_presim_ms": 100.0,
                         "t_sim_ms": 100.0, "record_spikes": False, "seed": 1, "campaign": "memory_calibration"}
    spec.pop("run_id", None)
    spec["run_id"] = make_run_id({k: v for k, v in spec.items() if k != "campaign"})
    context = run_context(campaign, run)
    python = interpreter(context["software"], backend, REPO)
    return spec, context, python


def peak_mb(record: Path) -> float:
    summary = read_summary(record)
    if summary.get("summary.status", summary.get("status")) != "ok":
        raise RuntimeError(f"{record}: not ok: {summary}")
    return float(summary["summary.mem_peak_mb_max"])


def times(record: Path) -> str:
    """The phase times, for information: timings need an idle machine (others' CPU share shown)."""
    s = read_summary(record)
    get = lambda k: s.get(f"summary.{k}")
    return (f"t_construct {get('t_construct_s'):.2f} s, t_compile {get('t_compile_s') or 0:.2f} s, "
            f"t_sim {get('t_sim_s'):.3f} s, others' CPU share {get('cpu_other_share')}")


def run_sampled(argv: list[str]) -> tuple[int, float, str]:
    """Run a harness, sampling the resident memory of its whole process tree (a backend's
    compiled program, such as Brian2's standalone binary, is a child the harness's own
    VmHWM does not see) every 20 ms; return its exit status, the tree's peak (MB) and stderr."""
    with TreePeak(interval_s=0.02) as peak:
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    return proc.returncode, peak.peak_mb, proc.stderr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--backends", nargs="+", default=["nest", "brian2", "genn", "spinnaker"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            points = []
            for scale in args.scales:
                try:
                    spec, context, python = spec_and_context(backend, scale)
                except ConfigError as err:  # e.g. the backend's environment is not built (make genn)
                    print(f"{backend}: cannot run here: {err}")
                    break
                out = Path(tmp) / f"{backend}-{scale}.h5"
                code, tree_mb, stderr = run_sampled(harness_argv(python, spec, out, context))
                if code != 0 or not out.exists():
                    print(f"{backend} scale {scale}: harness failed ({code}):\n{stderr[-2000:]}")
                    continue
                connections = derived.network_of(spec).connections_total()
                points.append((scale, connections, max(tree_mb, peak_mb(out))))
                print(f"{backend:10s} scale {scale:<5g} connections {connections:>12,d}  harness process peak "
                      f"{peak_mb(out):8.0f} MB, process tree peak {tree_mb:8.0f} MB; {times(out)}", flush=True)
            if len(points) < 2:
                print(f"{backend}: fewer than two points, no fit")
                continue
            conns, mems = np.array([p[1] for p in points], float), np.array([p[2] for p in points])
            slope, base = np.polyfit(conns, mems, 1)
            model = estimate.MEMORY_MODELS.get(backend)
            print(f"{backend}: fit base {base:.0f} MB + {slope * 1e6:.1f} bytes/connection"
                  + (f"; spikescale.estimate uses {model['constants']}" if model else ""))
            if model:
                for scale, connections, mem in points:
                    run = {"backend": backend, "n_scaling": scale, "k_scaling": scale, "drive": "poisson",
                           "dt_ms": 0.1, "nodes": 1, "tasks_per_node": 1, "threads_per_task": 1}
                    predicted, _ = estimate.memory_per_node_mb(run)
                    print(f"    scale {scale:<5g} measured {mem:8.0f} MB  estimate {predicted:8.0f} MB "
                          f"({predicted / mem - 1:+.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
