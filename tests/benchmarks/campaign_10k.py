"""A campaign of 10,000 runs: collecting and analysing it, and planning it.

1. Plans a 10,000-run campaign from a temporary copy of config/ (PD14 scale 0.1 on machine
   local-oversubscribed, 1, 2, 4 and 8 threads x 500 seeds x 5 repetitions), writes its
   plan.csv and config_resolved.json as the plan rule does (spikescale.plan), and one run file
   per run with the harness's own writer (spikescale.record.write_record). Each record is
   assembled by the harness's own build_record and summarize from rank trees laid out as a
   real run's (phases, NEST's kernel timers, counts, a node's energy meters sampled at 10 Hz
   by spikescale.energy.sampler); run ids, seeds, shapes and timings differ from file to
   file, and 1 % of the runs failed in their simulation phase.
2. Times the commands of the workflow's collect, strong_scaling and bennch_export rules
   (workflow/rules/collect.smk, analysis.smk), each a fresh process as a job: wall time and
   peak resident memory (the process's own ru_maxrss, from wait4).
   Target: collect + analysis < 30 s and every process < 2 GB.
3. Times a dry run of the whole workflow on that campaign (nothing done yet):
   `snakemake -n --cores 2 --config experiment=... config_dir=... results_dir=...`, and
   counts the jobs it planned. Target: < 20 s, with all 10,000 runs planned.

    .venvs/workflow/bin/python tests/benchmarks/campaign_10k.py [--runs 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

# harness_overhead lies next to this script, whose folder Python puts first on sys.path
from harness_overhead import BUSY_ELSEWHERE_LIMIT, REPO, _busy_cpu_s  # noqa: E402

from spikescale import harness, provenance  # noqa: E402
from spikescale.config import load_campaign  # noqa: E402
from spikescale.energy import Meter  # noqa: E402
from spikescale.energy.sampler import Sampler  # noqa: E402
from spikescale.jobs import run_context  # noqa: E402
from spikescale.plan import Run, plan_runs  # noqa: E402
from spikescale.plan import main as plan_main  # noqa: E402
from spikescale.record import iso, write_record  # noqa: E402

TARGET_COLLECT_ANALYSIS_S = 30.0
TARGET_PEAK_MB = 2000.0
TARGET_PLAN_S = 20.0
NAME = "bench10k"
THREADS = (1, 2, 4, 8)
REPETITIONS = 5
FAILED_EVERY = 100  # one run in 100 failed
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
ENV = dict(os.environ)


# ------------------------------------------------------------------ the campaign

def write_config(config_dir: Path, n_runs: int) -> int:
    """A copy of config/ with a campaign of about n_runs runs; returns its number of seeds."""
    shutil.copytree(REPO / "config", config_dir, dirs_exist_ok=True)
    per_seed = len(THREADS) * REPETITIONS
    seeds = max(1, -(-n_runs // per_seed))
    model = yaml.safe_load((config_dir / "model" / "pd14_s0.1_poisson.yaml").read_text())
    model.update(description="PD14 at scale 0.1, Poisson drive: the 10,000-run benchmark campaign",
                 seeds=list(range(1, seeds + 1)))
    (config_dir / "model" / f"{NAME}.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    experiment = {"name": NAME, "description": "benchmark: a campaign of 10,000 runs", "model": NAME,
                  "machine": "local-oversubscribed", "software": "default", "scaling": "strong", "backends": ["nest"],
                  "axes": {"nodes": [1], "tasks_per_node": [1], "threads_per_task": list(THREADS)},
                  "repetitions": REPETITIONS}
    (config_dir / "experiment" / f"{NAME}.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    return seeds


class FakeRapl(Meter):
    """A RAPL zone on a fake clock: a counter that wraps, as /sys/class/powercap's does."""

    source, kind, range_uj = "rapl", "measured", 262143328850

    def __init__(self, scope: str, watts: float, clock):
        self.scope, self.watts, self.clock = scope, watts, clock
        self.path = f"/sys/class/powercap/intel-rapl:0{':0' if scope.startswith('dram') else ''}"

    def read_uj(self) -> int:
        return int(1e12 + self.clock() * self.watts * 1e6) % self.range_uj

    def describe(self) -> dict:
        return {**super().describe(), "path": self.path}


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def rank_tree(run: Run, rng: np.random.Generator, t_start: float, failed: bool) -> tuple[dict, float]:
    """One rank's tree as the harness builds it (PhaseTimer.done, collect_rank, EnergyOnNode),
    with plausible timings of PD14 at scale 0.1 on run.threads_per_task threads; returns it
    and the run's end on the clock."""
    threads = run.threads_per_task
    speed = threads ** 0.85 * rng.normal(1.0, 0.03)
    walls = {"setup": 1.2 * rng.normal(1, 0.05), "create": 0.12 / speed, "connect": 1.6 / speed,
             "presimulate": 0.5 * 4.2 / speed, "simulate": 4.2 / speed, "collect": 0.004}
    mem = 310.0 + 25 * threads
    clock = Clock(t_start)
    sampler = Sampler([FakeRapl("package-0", 35.0 + 9 * threads, clock), FakeRapl("dram-0", 6.0, clock)],
                      0.1, None, clock=clock)
    phases, tree = {}, {"attrs": {"rank": 0}}
    for name, wall in walls.items():
        if name == "setup":
            clock.t += 0.8  # before the sampler: NEST's import
            sampler.start()
        else:
            sampler.mark(name)
        end = clock.t + wall
        while clock.t + 0.1 < end:  # the sampler process's 10 Hz readings
            clock.t += 0.1
            sampler.sample_now()
        clock.t = end
        if failed and name == "simulate":
            break
        phases[name] = {"attrs": {"order": len(phases), "wall_s": wall, "mem_rss_mb": mem * rng.normal(1, 0.01),
                                  "mem_peak_mb": mem * rng.normal(1.02, 0.01)}}
    sampler.mark("end")
    sampler.stop()
    sampler.recipe = {"energy": {}, "busy_cores": threads}  # as if read by the sampler process
    sampler.sampler_cpu_s = 0.05 * rng.normal(1, 0.1)
    if not failed:
        timers = {}
        for phase, own in (("construction", 0.0), ("presimulate", walls["presimulate"]),
                           ("simulate", walls["simulate"])):
            t = {"time_construction_create": walls["create"] * 0.9,
                 "time_construction_connect": walls["connect"] * 0.95, "time_simulate": own * 0.99,
                 "time_communicate_prepare": rng.uniform(0.001, 0.01, threads) if own else np.zeros(threads)}
            t.update({f"{k}_cpu": v * 0.99 for k, v in t.items()})
            timers[phase] = harness._timers_tree(t)
        spikes = int(77169 * 0.1 * 4.3 * rng.normal(1, 0.02))  # neurons x mean rate x 1 s
        tree["kernel_timers"] = timers
        tree["counts"] = {"attrs": {
            "n_neurons": 7716, "n_synapses_local": 2968386, "n_connections_local": 3055190,
            "n_virtual_processes": threads, "n_spikes_sim_counter": spikes, "n_spikes": spikes,
            "synaptic_events": spikes * 2968386 / 7716,
            "synaptic_events_method": "spikes (kernel counter) x mean out-degree of the network"}}
    unavailable = [["nvml", "no NVIDIA driver (libnvidia-ml.so.1 not found)"]]
    tree["energy"] = {"attrs": {"node": "vm", "unavailable": json.dumps(unavailable)}, "meters": sampler.tree()}
    tree["phases"] = phases
    return tree, clock.t


def run_record(run: Run, index: int, context: dict, host: dict, versions: dict) -> dict:
    """A complete run record, assembled as spikescale.harness.execute assembles it."""
    rng = np.random.default_rng(index)
    failed = index % FAILED_EVERY == FAILED_EVERY - 1
    t_start = 1.79e9 + 20.0 * index
    tree, t_end = rank_tree(run, rng, t_start, failed)
    spec = run.spec()
    ending = harness.Ending()
    if failed:
        error = "RuntimeError: NEST exception: a benchmark failure"
        ending = harness.Ending(status="failed", error=error, error_type="RuntimeError", failed_phase="simulate",
                                traceback=f"Traceback (most recent call last):\n  ...\n{error}\n")
    allocation_tree = {"attrs": {"requested_nodes": 1, "requested_tasks_per_node": 1,
                                 "requested_threads_per_task": run.threads_per_task, "mpi_world_size": 1,
                                 "nodes_used": ["vm"]},
                       "rank_node": np.array(["vm"], dtype=str), "rank_cpus_usable": np.array([2], dtype=np.int64)}
    record = harness.build_record(spec, context, [tree], ending=ending, host=host, versions=versions,
                                  allocation_tree=allocation_tree, peak_scope="phase")
    # what build_record takes from this process's clock and command line: the run's own
    record["attrs"]["started_at"], record["attrs"]["finished_at"] = iso(t_start), iso(t_end)
    record["summary"]["attrs"]["t_total_s"] = t_end - t_start + 0.3
    record["provenance"]["attrs"]["argv"] = (
        f"{REPO}/workflow/spikescale/harness.py --spec {run.spec_json()} "
        f"--context {json.dumps(context, sort_keys=True)} --out results/{run.campaign}/runs/{run.run_id}.h5")
    return record


def write_campaign(config_dir: Path, results: Path) -> list[Run]:
    """plan.csv and config_resolved.json as the plan rule writes them, then every run file."""
    plan_main(["--experiment", NAME, "--config-dir", str(config_dir), "--out-plan", str(results / "plan.csv"),
               "--out-config", str(results / "config_resolved.json")])
    campaign = load_campaign(NAME, config_dir)
    runs = plan_runs(campaign)
    context = run_context(campaign, runs[0])  # as the workflow passes it to each run (all nest, one variant)
    host = {**provenance.collect_host(), **provenance.git_state(),
            "python_executable": str(REPO / ".venvs" / "nest" / "bin" / "python")}
    versions = {**provenance.package_versions(), "nest-simulator": "3.10.0", "nest_have_mpi": False,
                "nest_threads_model": "openmp"}
    for i, run in enumerate(runs):
        write_record(results / "runs" / f"{run.run_id}.h5", run_record(run, i, context, host, versions))
        if (i + 1) % 2000 == 0:
            print(f"  {i + 1} run files written", flush=True)
    return runs


# ------------------------------------------------------------------ measuring

def measured(cmd: list[str], timeout: float = 1800, **kwargs) -> dict:
    """Run cmd as a fresh process; its wall time, its own peak RSS (ru_maxrss from wait4,
    so one process's peak, not the largest of all children so far), its output, and the
    share of the machine's CPUs that other processes used meanwhile."""
    with tempfile.TemporaryFile() as out:
        busy0 = _busy_cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        busy = _busy_cpu_s() - busy0
        out.seek(0)
        text = out.read().decode(errors="replace")
    own = usage.ru_utime + usage.ru_stime
    return {"rc": proc.returncode, "wall_s": wall, "peak_mb": usage.ru_maxrss * 1024 / 1e6, "cpu_s": own,
            "elsewhere": max(0.0, busy - own) / (wall * (os.cpu_count() or 1)), "output": text}


def check(step: str, result: dict) -> None:
    if result["rc"] != 0:
        raise RuntimeError(f"{step} exited {result['rc']}:\n{result['output'][-4000:]}")


def job_counts(output: str) -> dict[str, int]:
    """The first 'Job stats' table of Snakemake's output: rule -> jobs."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats:"):
            inside = True
            continue
        if inside:
            match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if match:
                counts[match[1]] = int(match[2])
            elif counts and not line.strip():
                break
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000, help="runs in the campaign (rounded up to whole seeds)")
    ap.add_argument("--keep", type=Path, help="work here and keep the files (default: a temporary directory)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: time again the run files an earlier --keep run wrote there")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="spikescale-10k-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return benchmark(work, args.runs, reuse=args.reuse and args.keep is not None)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def benchmark(work: Path, n_runs: int, reuse: bool = False) -> int:
    config_dir, results_root = work / "config", work / "results"
    seeds = write_config(config_dir, n_runs)
    results = results_root / NAME
    print(f"campaign {NAME}: PD14 scale 0.1, machine local-oversubscribed, threads {list(THREADS)} x {seeds} seeds "
          f"x {REPETITIONS} repetitions, in {work}")
    t0 = time.perf_counter()
    if reuse and len(list((results / "runs").glob("*.h5"))) == len(plan_runs(load_campaign(NAME, config_dir))):
        runs = plan_runs(load_campaign(NAME, config_dir))
        print(f"reusing the {len(runs)} run files in {results / 'runs'}")
    else:
        runs = write_campaign(config_dir, results)
    t_write = time.perf_counter() - t0
    size_mb = sum(p.stat().st_size for p in (results / "runs").iterdir()) / 1e6
    print(f"plan.csv, config_resolved.json and {len(runs)} run files ({size_mb:.0f} MB, "
          f"{len(runs) // FAILED_EVERY} failed runs) in {t_write:.1f} s (not a target)\n")

    # exactly the commands of the collect, strong_scaling and bennch_export rules
    py = [sys.executable, "-m"]
    steps = [
        ("collect", py + ["spikescale.store", "collect", "--campaign", NAME, "--plan", str(results / "plan.csv"),
                          "--runs-dir", str(results / "runs"), "--config", str(results / "config_resolved.json"),
                          "--out-h5", str(results / "campaign.h5"), "--out-csv", str(results / "runs.csv")]),
        ("strong_scaling", py + ["spikescale.analysis.strong_scaling", "--runs", str(results / "runs.csv"),
                                 "--table", str(results / "analysis/strong_scaling.csv"),
                                 "--png", str(results / "analysis/strong_scaling.png"),
                                 "--pdf", str(results / "analysis/strong_scaling.pdf")]),
        ("rtf_energy", py + ["spikescale.analysis.rtf_energy", "--runs", str(results / "runs.csv"),
                             "--table", str(results / "analysis/rtf_energy.csv"),
                             "--png", str(results / "analysis/rtf_energy.png"),
                             "--pdf", str(results / "analysis/rtf_energy.pdf")]),
        ("bennch_export", py + ["spikescale.analysis.bennch_export", "--campaign-h5", str(results / "campaign.h5"),
                                "--out", str(results / "analysis/bennch.csv")]),
    ]
    measured_steps = {}
    for name, cmd in steps:
        measured_steps[name] = measured(cmd, env=ENV)
        check(name, measured_steps[name])
    h5_mb = (results / "campaign.h5").stat().st_size / 1e6
    rows = sum(1 for _ in open(results / "runs.csv")) - 1
    bennch_rows = sum(1 for _ in open(results / "analysis/bennch.csv")) - 1

    # a dry run of the whole workflow on the same campaign, nothing done yet
    plan_results = work / "plan-results"
    dry = measured([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "-n",
                    "--cores", "2", "--config", f"experiment={NAME}", f"config_dir={config_dir}",
                    f"results_dir={plan_results}"], cwd=work)
    check("snakemake -n", dry)
    jobs = job_counts(dry["output"])
    simulate_jobs = sum(n for rule, n in jobs.items() if rule.startswith("simulate_"))

    print(f"{'step':<16} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'elsewhere':>10}")
    for name, r in [*measured_steps.items(), ("snakemake -n", dry)]:
        print(f"{name:<16} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_mb']:8.0f} {100 * r['elsewhere']:9.0f}%")
    print(f"collect: {rows} rows in runs.csv, campaign.h5 {h5_mb:.0f} MB; bennch.csv {bennch_rows} rows")
    print("dry run jobs: " + ", ".join(f"{rule} {n}" for rule, n in jobs.items()))
    print("peak MB = the process's own maximum resident set (ru_maxrss); elsewhere = share of the machine's CPUs\n"
          "  that other processes used meanwhile (a busy machine inflates every time).")
    all_steps = [*measured_steps.values(), dry]
    disturbed = [r for r in all_steps if r["elsewhere"] > BUSY_ELSEWHERE_LIMIT]
    if disturbed:
        print(f"NOTE: other processes used > {BUSY_ELSEWHERE_LIMIT:.0%} of the CPUs during {len(disturbed)} of "
              f"{len(all_steps)} steps: their times are inflated; rerun on a quiet machine")
    busy_note = " (machine was busy, see NOTE)" if disturbed else ""

    collect_s = measured_steps["collect"]["wall_s"]
    # analysis: the analysis rules on runs.csv (scaling table and figure, RTF/energy table and
    # figure); the beNNch export is a format conversion for another tool, shown apart
    analysis_s = measured_steps["strong_scaling"]["wall_s"] + measured_steps["rtf_energy"]["wall_s"]
    export_s = measured_steps["bennch_export"]["wall_s"]
    peak = max(r["peak_mb"] for r in measured_steps.values())
    ok = collect_s + analysis_s < TARGET_COLLECT_ANALYSIS_S and peak < TARGET_PEAK_MB and rows == len(runs)
    print(f"\n{'PASS' if ok else 'FAIL'}: collect {collect_s:.1f} s + analysis {analysis_s:.1f} s = "
          f"{collect_s + analysis_s:.1f} s (target < {TARGET_COLLECT_ANALYSIS_S:g} s), peak {peak:.0f} MB "
          f"(target < {TARGET_PEAK_MB:g} MB), {rows} of {len(runs)} runs collected{busy_note}")
    print(f"INFO: with the beNNch-plot export ({export_s:.1f} s) as well: {collect_s + analysis_s + export_s:.1f} s")
    ok = dry["wall_s"] < TARGET_PLAN_S and simulate_jobs == len(runs)
    print(f"{'PASS' if ok else 'FAIL'}: dry run planned {simulate_jobs} runs ({jobs.get('total', '?')} jobs) in "
          f"{dry['wall_s']:.1f} s (target < {TARGET_PLAN_S:g} s, all {len(runs)} runs){busy_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
