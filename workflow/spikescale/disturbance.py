"""Disturbed runs: how much CPU time other processes took on the CPUs a run could use.

Each rank takes two snapshots, at the start of phase ``create`` (after its barrier) and at
the end of phase ``simulate``: the busy ticks of every CPU in its affinity mask
(/proc/stat) and the CPU ticks of its own process tree (/proc/<pid>/stat: itself, its
threads, its waited-for children, and every living descendant, such as the energy sampler
process or Brian2's standalone program). Per node (the ranks on it merged, so that sibling
ranks do not count as each other's disturbance):

    other CPU s      = busy s on the node's run CPUs - CPU s of the run's processes there
    cpu_other_share  = other CPU s / (window wall s x CPUs in the ranks' affinity masks)

The denominator is the CPU capacity the run's threads could use: a 1-core hog beside a
2-thread run on a 2-CPU machine gives about 0.5. For a run with fewer threads than CPUs in
its mask, the share counts others on CPUs the run may not have needed (conservative).
irq, softirq and steal time count as other (nobody's process, but not the run's either).
The run-level share is the maximum over nodes; above the machine file's
``disturbance.max_other_cpu_share`` the run is ``disturbed``. Also recorded at the run's
start: the 1-minute load average and the CPU frequency (missing: unavailable, with why).

The arithmetic is in pure functions over the files' text (tests/test_disturbance.py).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

WINDOW = ("create", "simulate")  # first and last phase of the measured window
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (guest is already in user)
PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")


# -- parsing -----------------------------------------------------------------------------

def parse_proc_stat(text: str) -> dict[int, int]:
    """Busy ticks per CPU from /proc/stat's 'cpuN ...' lines (the aggregate 'cpu' line is
    skipped); idle and iowait are not busy."""
    busy = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(v) for v in rest.split()]
            busy[int(name[3:])] = sum(values[i] for i in BUSY_FIELDS if i < len(values))
    return busy


def parse_pid_stat(text: str) -> tuple[int, int]:
    """(parent pid, utime + stime + cutime + cstime in ticks) from /proc/<pid>/stat. The
    command name may hold spaces and parentheses: the fields start after the last ')'."""
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(fields[i]) for i in (11, 12, 13, 14))


def tree_ticks(stats: dict[int, tuple[int, int]], root: int) -> int:
    """CPU ticks of root and of every living descendant of it (stats: pid -> (ppid, ticks))."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def parse_cpuinfo_mhz(text: str) -> dict[int, float]:
    """'cpu MHz' per processor from /proc/cpuinfo (absent on some architectures)."""
    out, processor = {}, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor" and value.strip().isdigit():
            processor = int(value)
        elif key == "cpu MHz" and processor is not None:
            out[processor] = float(value)
    return out


# -- the arithmetic ---------------------------------------------------------------------

def busy_delta(before: dict[int, int], after: dict[int, int], cpus) -> dict[int, int]:
    """Busy ticks per CPU of `cpus` between two parse_proc_stat snapshots."""
    return {cpu: after[cpu] - before[cpu] for cpu in cpus}


def other_share(busy_s: float, own_s: float, wall_s: float, n_cpus: int) -> float:
    """Share of the run's CPU capacity (wall x CPUs) that other processes took. Per-CPU and
    per-process accounting are sampled differently, so others' time can come out slightly
    negative on an idle node: it is clipped to 0."""
    return max(0.0, busy_s - own_s) / (wall_s * n_cpus)


def is_disturbed(share: float | None, max_share: float) -> bool | None:
    """Above the threshold; None where the share was not measured."""
    return None if share is None else bool(share > max_share)


def _number(value) -> float | None:
    """A figure from a rank's tree, in memory (None) or read back from a record ('')."""
    return None if value is None or value == "" else float(value)


def node_figures(rank_trees: list[dict]) -> dict[str, dict]:
    """Per node, from its ranks' 'disturbance' trees: the union of their CPUs, each CPU's
    busy time from the lowest rank that measured it, the sum of the ranks' own CPU time,
    the longest window; the share of others, the frequency and load average at the start."""
    by_node: dict[str, list[dict]] = {}
    for tree in sorted(rank_trees, key=lambda t: t["attrs"].get("rank", 0)):
        if "disturbance" in tree:
            by_node.setdefault(str(tree["disturbance"]["attrs"]["node"]), []).append(tree["disturbance"])
    out = {}
    for node, trees in by_node.items():
        attrs = [t["attrs"] for t in trees]
        figures = {"cpu_freq_mhz": _number(attrs[0]["cpu_freq_mhz"]), "cpu_freq_source": attrs[0]["cpu_freq_source"],
                   "load_1min_at_start": _number(attrs[0]["load_1min_at_start"]), "ranks": len(trees),
                   "cpu_other_share": None, "unavailable": ""}
        missing = [a["unavailable"] for a in attrs if a["unavailable"]]
        if missing:
            figures["unavailable"] = missing[0]
        else:
            busy: dict[int, float] = {}
            for tree in trees:
                for cpu, seconds in zip(np.asarray(tree["cpus"]).tolist(), np.asarray(tree["cpu_busy_s"]).tolist(),
                                        strict=True):
                    busy.setdefault(int(cpu), float(seconds))
            wall_s = max(_number(a["wall_s"]) for a in attrs)
            own_s = sum(_number(a["own_cpu_s"]) for a in attrs)
            figures.update(cpus=sorted(busy), wall_s=wall_s, busy_cpu_s=sum(busy.values()), own_cpu_s=own_s,
                           cpu_other_share=other_share(sum(busy.values()), own_s, wall_s, len(busy)))
        out[node] = figures
    return out


def run_summary(rank_trees: list[dict], max_share: float) -> dict:
    """The run's figures for /summary: the largest share over nodes (a run is as disturbed as
    its most disturbed node), the lowest start frequency, the highest load average."""
    nodes = node_figures(rank_trees)
    unavailable = "; ".join(dict.fromkeys(f"{n}: {f['unavailable']}" if len(nodes) > 1 else f["unavailable"]
                                          for n, f in nodes.items() if f["unavailable"]))
    if not nodes:
        unavailable = "no rank measured (the run failed before its set-up ended)"
    share = max(f["cpu_other_share"] for f in nodes.values()) if nodes and not unavailable else None
    freqs = [f["cpu_freq_mhz"] for f in nodes.values() if f["cpu_freq_mhz"] is not None]
    loads = [f["load_1min_at_start"] for f in nodes.values() if f["load_1min_at_start"] is not None]
    return {"disturbed": is_disturbed(share, max_share), "cpu_other_share": share,
            "disturbance_unavailable": unavailable, "disturbance_max_other_cpu_share": max_share,
            "cpu_freq_mhz": min(freqs) if freqs else None,
            "cpu_freq_source": "; ".join(dict.fromkeys(f["cpu_freq_source"] for f in nodes.values())),
            "load_1min_at_start": max(loads) if loads else None,
            "disturbance_nodes": json.dumps(nodes, sort_keys=True)}


# -- reading this node ------------------------------------------------------------------

def read_cpu_freq_mhz(cpus, sys_cpu: Path = SYS_CPU, proc: Path = PROC) -> tuple[float | None, str]:
    """Mean current frequency of `cpus` in MHz and where it came from: cpufreq's
    scaling_cur_freq (kHz), else /proc/cpuinfo's 'cpu MHz' (on a virtual machine often the
    host's nominal value), else (None, 'unavailable: <why>')."""
    cpus = sorted(cpus)
    try:
        khz = [int((sys_cpu / f"cpu{c}" / "cpufreq" / "scaling_cur_freq").read_text()) for c in cpus]
        return sum(khz) / len(khz) / 1000.0, "cpufreq scaling_cur_freq, mean over the run's CPUs"
    except (OSError, ValueError):
        pass
    try:
        mhz = parse_cpuinfo_mhz((proc / "cpuinfo").read_text())
    except OSError:
        mhz = {}
    if mhz and all(c in mhz for c in cpus):
        return sum(mhz[c] for c in cpus) / len(cpus), "/proc/cpuinfo cpu MHz, mean over the run's CPUs"
    return None, (f"unavailable: no {sys_cpu}/cpu{cpus[0] if cpus else 'N'}/cpufreq/scaling_cur_freq and no "
                  f"'cpu MHz' for the run's CPUs in {proc}/cpuinfo")


def _load_1min() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # no load average on this system
        return None


class Watch:
    """This rank's measurement: the load average when the run starts (made with the rank),
    snapshots at the window's first phase start and last phase end (PhaseTimer calls
    phase_started and phase_ended)."""

    def __init__(self, node: str, proc: Path = PROC, sys_cpu: Path = SYS_CPU, clock=time.perf_counter):
        self.node, self.proc, self.sys_cpu, self.clock = node, proc, sys_cpu, clock
        self.load_1min = _load_1min()
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.freq_mhz, self.freq_source = None, "unavailable: not read (the run ended before its phase create)"
        self.start = self.end = None
        self.unavailable = "the run did not reach the end of its phase simulate"

    def _snapshot(self) -> tuple[float, dict[int, int], int]:
        stats = {}
        for entry in self.proc.iterdir():
            if entry.name.isdigit():
                try:
                    stats[int(entry.name)] = parse_pid_stat((entry / "stat").read_text())
                except (OSError, ValueError, IndexError):  # a process that ended while we read
                    continue
        busy = parse_proc_stat((self.proc / "stat").read_text())
        return self.clock(), busy, tree_ticks(stats, os.getpid())

    def phase_started(self, name: str) -> None:
        if name == WINDOW[0]:
            self.freq_mhz, self.freq_source = read_cpu_freq_mhz(self.cpus, self.sys_cpu, self.proc)
            try:
                self.start = self._snapshot()
            except OSError as exc:
                self.unavailable = f"cannot read {self.proc}: {exc}"

    def phase_ended(self, name: str) -> None:
        if name == WINDOW[1] and self.start is not None:
            try:
                self.end = self._snapshot()
                self.unavailable = ""
            except OSError as exc:
                self.unavailable = f"cannot read {self.proc}: {exc}"

    def tree(self) -> dict:
        """This rank's 'disturbance' subtree (docs/hdf5-layout.md)."""
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        attrs = {"node": self.node, "window": "..".join(WINDOW), "cpu_freq_mhz": self.freq_mhz,
                 "cpu_freq_source": self.freq_source, "load_1min_at_start": self.load_1min,
                 "unavailable": self.unavailable, "wall_s": None, "own_cpu_s": None}
        cpu_busy_s = np.zeros(len(self.cpus))
        if not self.unavailable:
            (t0, busy0, own0), (t1, busy1, own1) = self.start, self.end
            delta = busy_delta(busy0, busy1, self.cpus)
            cpu_busy_s = np.array([delta[c] * tick_s for c in self.cpus])
            attrs.update(wall_s=t1 - t0, own_cpu_s=(own1 - own0) * tick_s)
        return {"attrs": attrs, "cpus": np.array(self.cpus, dtype=np.int64), "cpu_busy_s": cpu_busy_s}


# -- the workflow's last words ----------------------------------------------------------

def _true(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def disturbed_line(runs_csv: str | os.PathLike) -> str:
    """One line naming the campaign's disturbed runs (runs.csv's `disturbed`), or '' when
    there are none (or no runs.csv yet)."""
    try:
        with open(runs_csv, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if _true(r.get("disturbed", ""))]
    except OSError:
        return ""
    if not rows:
        return ""
    named = ", ".join(f"{r['run_id']} (cpu_other_share {float(r['cpu_other_share']):.2f})"
                      if r.get("cpu_other_share") else r["run_id"] for r in rows)
    return (f"spikescale: {len(rows)} disturbed run(s): other processes took more than the machine's "
            f"disturbance.max_other_cpu_share of their CPUs; the figures leave them out of their means: {named}. "
            f"To measure them again, move their files out of runs/ and run the workflow again "
            f"(docs/running.md#disturbed-runs).")
