"""Where a run's ranks and threads ran: CPU sets, the CPU each thread last ran on, pinning.

Each rank records the CPUs it may run on (its affinity mask when it starts) and samples
every thread of its process (/proc/self/task/<tid>/): the CPUs the thread may run on
(Cpus_allowed_list in status), the CPU it last ran on (field 39 of stat) and its CPU ticks.
Samples are taken in the rank's main thread (the simulator holds Python's GIL through each
simulation call, so a sampler thread would see nothing): when phase ``simulate`` starts,
at every progress report of a sliced simulation (NEST: about ten during a long simulation),
and when ``simulate`` ends. The simulator's OpenMP threads live from their first parallel
region to the end of the process, so they are all there at each sample.

A run's threads share cores (runs.csv ``threads_share_cores``) when, on one node,

- two busy threads (of any of the node's ranks) were last seen on the same core in a sample
  taken during or at the end of ``simulate`` (busy: at least BUSY_SHARE of the window's
  wall time on a CPU), or
- the node's threads (tasks per node x threads per task) outnumber the cores in the union of
  its ranks' CPU sets while the machine does not allow oversubscription.

A core is a (package, core id) pair from /sys/devices/system/cpu/cpuN/topology: two
hardware threads of one core count as one core; without that topology each CPU is a core.

The machine file's ``pinning`` block is applied here (OMP_* for the simulator's threads,
set before the simulator is imported) and by spikescale.resources (the launcher's binding).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")
BUSY_SHARE = 0.1  # a thread on a CPU for at least this share of the simulate window is busy
WINDOW = "simulate"


# -- parsing -----------------------------------------------------------------------------

def parse_cpu_list(text: str) -> list[int]:
    """'0-3,8,10-11' (the kernel's list format) -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return sorted(set(cpus))


def format_cpu_list(cpus) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8' (the inverse of parse_cpu_list)."""
    ordered = sorted({int(c) for c in cpus})
    parts, start = [], None
    for i, cpu in enumerate(ordered):
        if start is None:
            start = cpu
        if i + 1 == len(ordered) or ordered[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def parse_task_stat(text: str) -> tuple[int, int]:
    """(CPU last run on, utime + stime in ticks) from /proc/<pid>/task/<tid>/stat: fields 39
    and 14, 15 (1-based); the command name may hold spaces and ')': fields follow the last ')'."""
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return int(fields[36]), int(fields[11]) + int(fields[12])


def parse_status_cpus_allowed(text: str) -> str:
    """The Cpus_allowed_list line of /proc/<pid>/task/<tid>/status ('' when absent)."""
    for line in text.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return ""


def core_of_cpu(cpus, sys_cpu: Path = SYS_CPU) -> dict[int, str]:
    """Each CPU's core as 'package:core' from sysfs; a CPU without topology files is its own
    core ('cpuN')."""
    out = {}
    for cpu in cpus:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            out[int(cpu)] = f"{(topo / 'physical_package_id').read_text().strip()}:{(topo / 'core_id').read_text().strip()}"
        except OSError:
            out[int(cpu)] = f"cpu{cpu}"
    return out


def sample_threads(pid: int | str = "self", proc: Path = PROC) -> list[dict]:
    """Every thread of a process now: tid, name, CPUs allowed, last CPU, CPU ticks."""
    rows = []
    task_dir = proc / str(pid) / "task"
    for entry in sorted(task_dir.iterdir(), key=lambda p: int(p.name)):
        try:
            last_cpu, ticks = parse_task_stat((entry / "stat").read_text())
            allowed = parse_status_cpus_allowed((entry / "status").read_text())
            name = (entry / "comm").read_text().strip()
        except (OSError, ValueError, IndexError):  # a thread that ended while we read
            continue
        rows.append({"tid": int(entry.name), "name": name, "cpus_allowed": allowed, "last_cpu": last_cpu,
                     "ticks": ticks})
    return rows


# -- the verdict --------------------------------------------------------------------------

def busy_threads(samples: list[dict], tick_s: float, busy_share: float = BUSY_SHARE) -> set[tuple[str, int]]:
    """(rank-or-process key, tid) of threads on a CPU for at least busy_share of the window,
    from the first and last samples of one process (samples: {'t_s', 'key', 'threads'})."""
    if len(samples) < 2:
        return set()
    first, last = samples[0], samples[-1]
    window_s = last["t_s"] - first["t_s"]
    before = {t["tid"]: t["ticks"] for t in first["threads"]}
    busy = set()
    for thread in last["threads"]:
        used_s = (thread["ticks"] - before.get(thread["tid"], 0)) * tick_s  # new threads: all in the window
        # at least one tick: a window shorter than a tick cannot tell busy from idle
        if used_s > 0 and used_s >= busy_share * window_s:
            busy.add((last["key"], thread["tid"]))
    return busy


def shared_cores_seen(processes: list[list[dict]], cores: dict[int, str], tick_s: float) -> list[str]:
    """On one node: each sample (after the first) where two busy threads were last seen on one
    core, as text. processes: each rank's samples (all with the same 'key' per rank)."""
    busy = set().union(*(busy_threads(s, tick_s) for s in processes)) if processes else set()
    seen = []
    n_samples = max((len(s) for s in processes), default=0)
    for i in range(1, n_samples):
        on_core: dict[str, list[str]] = {}
        for samples in processes:
            if i >= len(samples):
                continue
            for thread in samples[i]["threads"]:
                if (samples[i]["key"], thread["tid"]) in busy:
                    core = cores.get(thread["last_cpu"], f"cpu{thread['last_cpu']}")
                    on_core.setdefault(core, []).append(f"{samples[i]['key']}/{thread['tid']}")
        seen += [f"sample {i}: threads {', '.join(who)} on core {core}" for core, who in sorted(on_core.items())
                 if len(who) > 1]
    return seen


def verdict(rank_trees: list[dict], threads_per_node: int, allow_oversubscription: bool) -> dict:
    """runs.csv's threads_share_cores and cpu_sets from the ranks' 'placement' trees, with
    the reasons (for the record). None where no rank sampled its threads."""
    trees = sorted((t for t in rank_trees if "placement" in t), key=lambda t: t["attrs"].get("rank", 0))
    cpu_sets = " ".join(f"r{t['attrs'].get('rank', 0)}:{t['placement']['attrs']['cpus']}" for t in trees)
    if not trees:
        return {"threads_share_cores": None, "cpu_sets": "", "threads_share_cores_reason": "no rank recorded its placement"}
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    by_node: dict[str, list[dict]] = {}
    for tree in trees:
        by_node.setdefault(str(tree["placement"]["attrs"]["node"]), []).append(tree)
    reasons = []
    for node, node_trees in sorted(by_node.items()):
        cores = {}
        cpus: set[int] = set()
        for tree in node_trees:
            attrs = tree["placement"]["attrs"]
            cores.update({int(k): v for k, v in json.loads(attrs["core_of_cpu"]).items()})
            cpus |= set(parse_cpu_list(attrs["cpus"]))
        n_cores = len({cores.get(c, f"cpu{c}") for c in cpus})
        if threads_per_node > n_cores and not allow_oversubscription:
            reasons.append(f"{node}: {threads_per_node} threads on {n_cores} core(s) of CPUs {format_cpu_list(cpus)}")
        samples = [samples_of(tree) for tree in node_trees]
        reasons += [f"{node}: {r}" for r in shared_cores_seen([s for s in samples if s], cores, tick_s)]
    return {"threads_share_cores": bool(reasons), "cpu_sets": cpu_sets,
            "threads_share_cores_reason": "; ".join(reasons[:20]) + (f" (and {len(reasons) - 20} more)"
                                                                     if len(reasons) > 20 else "")}


def samples_of(rank_tree: dict) -> list[dict]:
    """A rank's samples back from its 'placement' tree (as built by Watch.tree, or read back)."""
    p = rank_tree["placement"]
    key = f"r{rank_tree['attrs'].get('rank', 0)}"
    index = np.asarray(p.get("sample", []))
    columns = {name: np.asarray(p[name]).tolist() for name in ("tid", "last_cpu", "ticks")}
    out = []
    for i, t_s in enumerate(np.asarray(p.get("sample_t_s", [])).tolist()):
        rows = np.flatnonzero(index == i)
        out.append({"t_s": float(t_s), "key": key,
                    "threads": [{name: int(columns[name][r]) for name in columns} for r in rows]})
    return out


# -- pinning ------------------------------------------------------------------------------

def pinning_text(pinning: dict | None) -> str:
    """runs.csv's `pinning`: the machine file's pinning block as 'key=value ...'."""
    if not pinning:
        return "none declared"
    return " ".join(f"{k}={pinning[k]}" for k in sorted(pinning))


def pinning_environment(pinning: dict | None) -> dict[str, str]:
    """The OpenMP variables a pinning block asks for (OMP_PROC_BIND, OMP_PLACES)."""
    pinning = pinning or {}
    env = {}
    if "omp_proc_bind" in pinning:
        value = pinning["omp_proc_bind"]
        env["OMP_PROC_BIND"] = str(value).lower() if isinstance(value, bool) else str(value)
    if "omp_places" in pinning:
        env["OMP_PLACES"] = str(pinning["omp_places"])
    return env


def apply_pinning(pinning: dict | None, environ=None) -> dict[str, str]:
    """Set the pinning's OpenMP variables in this process's environment (the machine file wins
    over what the job inherited). Must run before the simulator is imported: the OpenMP
    runtime reads them when it is loaded. Returns what was set."""
    environ = os.environ if environ is None else environ
    env = pinning_environment(pinning)
    environ.update(env)
    return env


# -- this rank ----------------------------------------------------------------------------

class Watch:
    """This rank's placement: its CPU set at start, its threads sampled over simulate
    (PhaseTimer calls phase_started and phase_ended; the harness's progress report calls
    sample)."""

    def __init__(self, node: str, proc: Path = PROC, sys_cpu: Path = SYS_CPU, clock=time.perf_counter):
        self.node, self.proc, self.sys_cpu, self.clock = node, proc, sys_cpu, clock
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.samples: list[tuple[float, str, list[dict]]] = []
        self.in_window = False
        self.unavailable = "the run did not reach its phase simulate"

    def sample(self, when: str = "progress") -> None:
        if when == "progress" and not self.in_window:
            return
        try:
            self.samples.append((self.clock(), when, sample_threads("self", self.proc)))
            self.unavailable = ""
        except OSError as exc:
            self.unavailable = f"cannot read {self.proc}/self/task: {exc}"

    def phase_started(self, name: str) -> None:
        if name == WINDOW:
            self.in_window = True
            self.sample("start")

    def phase_ended(self, name: str) -> None:
        if name == WINDOW:
            self.sample("end")
            self.in_window = False

    def tree(self) -> dict:
        """This rank's 'placement' subtree (docs/hdf5-layout.md)."""
        rows = [(i, thread) for i, (_, _, threads) in enumerate(self.samples) for thread in threads]
        t0 = self.samples[0][0] if self.samples else 0.0
        return {"attrs": {"node": self.node, "cpus": format_cpu_list(self.cpus), "n_cpus": len(self.cpus),
                          "core_of_cpu": json.dumps(core_of_cpu(self.cpus, self.sys_cpu), sort_keys=True),
                          "sampled": "at the start of simulate, at each progress report, at its end",
                          "unavailable": self.unavailable},
                "sample_t_s": np.array([t - t0 for t, _, _ in self.samples], dtype=float),
                "sample_when": np.array([w for _, w, _ in self.samples], dtype=str),
                "sample": np.array([i for i, _ in rows], dtype=np.int64),
                "tid": np.array([t["tid"] for _, t in rows], dtype=np.int64),
                "thread_name": np.array([t["name"] for _, t in rows], dtype=str),
                "cpus_allowed": np.array([t["cpus_allowed"] for _, t in rows], dtype=str),
                "last_cpu": np.array([t["last_cpu"] for _, t in rows], dtype=np.int64),
                "ticks": np.array([t["ticks"] for _, t in rows], dtype=np.int64)}
