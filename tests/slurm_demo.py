"""The SLURM path on one machine, to watch: `make slurm-demo` (as root).

Starts the two-node test cluster of tests/slurm_cluster.py, runs the campaign
config/experiment/slurm_test.yaml through Snakemake's SLURM executor (profiles/slurm-test:
one job array per resource shape), prints the queue whenever it changes (arrays, tasks,
states and the nodes each was given) while the campaign runs, then each run's allocation
from runs.csv, and stops the cluster, leaving nothing running. Results stay in
results/slurm_test/ (runs.csv, campaign.h5, analysis/ with the strong-scaling figure).

Needs root, the Debian packages `make system-deps` installs, and `make nest-mpi`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# job (array_task), the executor's comment (rule_<rule>_wildcards_...), state, nodes, CPUs, node list
QUEUE_FORMAT = "%i|%k|%T|%D|%C|%R"


def queue_line(raw: str) -> str:
    """One squeue line as a row: job, rule, state, nodes, CPUs, where (or why it waits)."""
    job, comment, state, nodes, cpus, where = raw.split("|", 5)
    rule = comment.removeprefix("rule_").split("_wildcards_")[0]
    return f"{job:>12} {rule:<26} {state:<9} {nodes:>5} node(s) {cpus:>3} CPU(s)  {where}"


def watch_queue(env: dict, stop: threading.Event, interval_s: float = 1.0) -> None:
    """Print squeue whenever what it shows changes."""
    shown = None
    while not stop.wait(interval_s):
        result = subprocess.run(["squeue", "--noheader", f"--format={QUEUE_FORMAT}"], env=env, capture_output=True,
                                text=True, timeout=30)
        lines = sorted(queue_line(line) for line in result.stdout.splitlines() if line.count("|") >= 5)
        if lines != shown and result.returncode == 0:
            shown = lines
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}] queue ({len(lines)} job(s)):", flush=True)
            for line in lines:
                print(f"    {line}", flush=True)


def allocations(results: Path) -> None:
    """Each run's array job and task, the nodes its ranks ran on and what it measured."""
    import pandas as pd

    runs = pd.read_csv(results / "runs.csv", dtype={"slurm_array_job_id": str, "slurm_array_task_id": str})
    columns = ["run_id", "status", "nodes", "threads_per_task", "slurm_array_job_id", "slurm_array_task_id",
               "nodes_used", "t_sim_s", "rtf"]
    print(runs[columns].to_string(index=False), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default=str(REPO / "results"), help="where results/slurm_test goes")
    parser.add_argument("--experiment", default="slurm_test")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("slurm-demo: the test cluster's daemons run as root: run it as root (as CI does)", file=sys.stderr)
        return 2
    from slurm_cluster import SlurmTestCluster  # beside this script, whose folder Python puts on sys.path

    results = Path(args.results_dir)
    with tempfile.TemporaryDirectory(prefix="spikescale-slurm-demo-") as tmp:
        started = time.monotonic()
        with SlurmTestCluster(tmp) as cluster:
            print(f"test cluster up in {time.monotonic() - started:.1f} s: nodes {', '.join(cluster.nodes)}, "
                  f"{cluster.cores_per_node} CPUs and {cluster.memory_per_node_mb} MB each", flush=True)
            stop = threading.Event()
            watcher = threading.Thread(target=watch_queue, args=(cluster.env, stop), daemon=True)
            watcher.start()
            command = [str(SNAKEMAKE), "--profile", str(REPO / "profiles" / "slurm-test"), "--snakefile",
                       str(REPO / "Snakefile"), "--config", f"experiment={args.experiment}",
                       f"results_dir={results}"]
            print("$ " + " ".join(command), flush=True)
            try:
                proc = subprocess.run(command, cwd=REPO, env=cluster.env, timeout=3600)
            finally:
                stop.set()
                watcher.join()
            if proc.returncode == 0:
                allocations(results / args.experiment)
        left = subprocess.run(["pgrep", "-af", tmp], capture_output=True, text=True).stdout.strip()
        print(f"test cluster stopped; its processes still running: {left or 'none'}", flush=True)
    if proc.returncode == 0:
        print(f"results: {results / args.experiment}/ (runs.csv, campaign.h5, analysis/strong_scaling.png)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
