"""Energy over a run: counter readings at phase boundaries and at a fixed rate, per node.

Readings come from two places. The harness reads every meter at each phase boundary
(`mark`, after a barrier on all ranks), so a phase's energy does not depend on the sampling
interval. A separate sampler process reads them at `interval_s` for the time series: a
thread would not do, since the simulator holds Python's GIL for the whole of a simulation
call and the thread would then take no sample at all (seen here: none in 1.2 s).

All readings are merged by time and turned into energy since the start, the step between
two readings taken modulo the counter's range (counter_delta). That is exact as long as the
energy between two readings stays below half the range; at 10 Hz and a package range of
~262 kJ that would need over a megawatt. `wrap_margin` in the record says how close each
meter came: the time to count through its whole range at its highest observed power, over
the longest gap between readings (above 2, no wrap can have been missed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np



def counter_delta(last: int, value: int, range_uj: int | None) -> int:
    """Energy between two readings of a counter that wraps at range_uj: the shortest signed
    difference modulo the range. A wrap (near the top, then near 0) gives the small positive
    step it was; two readings whose time stamps came out in the wrong order (the harness and
    the sampler process read the same counter microseconds apart) give a small negative
    step that the next reading cancels. Taking every decrease for a wrap would add a whole
    range (262 kJ for a RAPL package) at such a reordering: seen in a test under load."""
    if not range_uj:
        return value - last
    half = range_uj // 2
    return (value - last + half) % range_uj - half


class Sampler:
    """recipe: how the sampler process finds the same meters ({"energy": settings,
    "busy_cores": n}, see discover.py); without one (or with interval_s 0) only the
    readings taken by `mark` and `sample_now` count."""

    def __init__(self, meters, interval_s: float = 0.1, recipe: dict | None = None, clock=time.monotonic):
        self.meters = list(meters)
        self.scopes = [m.scope for m in self.meters]
        self.interval_s = interval_s
        self.recipe = recipe
        self.clock = clock
        self.readings: list[tuple[float, list[int | None]]] = []  # (t, raw per meter), own process
        self.marks: list[tuple[str, float]] = []
        self.power_w: list[tuple[float, list[float | None]]] = []
        self.read_errors: list[str] = []
        self.sampler_cpu_s = None  # CPU time the sampler process used, start-up included
        self.sampler_startup_s = None  # from its launch to its first reading
        self.t0 = None
        self._process = None
        self._samples_file = None
        self._merged = None

    # -- reading ----------------------------------------------------------------------

    def _read(self) -> float:
        t = self.clock()
        raw = []
        for meter in self.meters:
            try:
                raw.append(meter.read_uj())
            except (OSError, ValueError, RuntimeError) as exc:
                raw.append(None)
                if len(self.read_errors) < 20:
                    self.read_errors.append(f"{meter.scope}: {exc}")
        self.readings.append((t, raw))
        return t

    def sample_now(self) -> None:
        """One reading for the time series, taken in this process (tests; no sampler process)."""
        self._read()

    # -- life cycle -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The sampler process's id while it runs (not the simulator's memory: the harness
        leaves it out of the rank's peak)."""
        return self._process.pid if self._process is not None else None

    def start(self) -> "Sampler":
        self.t0 = self._read()
        if self.interval_s > 0 and self.recipe is not None:
            fd, path = tempfile.mkstemp(prefix="spikescale-energy-", suffix=".txt")
            os.close(fd)
            self._samples_file = path
            self._process = subprocess.Popen(
                [sys.executable, "-m", "spikescale.energy.sampler_process", "--recipe", json.dumps(self.recipe),
                 "--interval-s", str(self.interval_s), "--out", path, "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self._wait_for_first_reading()
        return self

    def _wait_for_first_reading(self, timeout_s: float = 30.0) -> None:
        """Returns once the sampler process has written its first reading, so that no phase
        starts before it reads. Python's start-up takes ~0.1 s on an idle node and seconds
        on a busy one; a phase begun before it would lose wraps to the marks alone."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s and self._process.poll() is None:
            with open(self._samples_file) as fh:
                if sum(1 for line in fh if line.startswith('{"t"')) >= 1:
                    self.sampler_startup_s = time.monotonic() - started
                    return
            time.sleep(0.01)
        state = "exited" if self._process.poll() is not None else f"not reading after {timeout_s:.0f} s"
        self.read_errors.append(f"sampler process {state}: readings at phase boundaries only until it reads")

    def mark(self, name: str) -> None:
        """A phase boundary: read every meter now."""
        self.marks.append((name, self._read()))

    def stop(self) -> None:
        self._read()
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                _, stderr = self._process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                _, stderr = self._process.communicate()
            if stderr.strip():
                self.read_errors.append(f"sampler process: {stderr.strip()[-500:]}")
            self._load_samples()
            os.unlink(self._samples_file)
            self._process = None
        self._merged = None

    def _load_samples(self) -> None:
        with open(self._samples_file) as fh:
            lines = fh.read().splitlines()
        if not lines:
            return
        header = json.loads(lines[0])
        index = {scope: header["scopes"].index(scope) for scope in self.scopes if scope in header["scopes"]}
        missing = [s for s in self.scopes if s not in index]
        if missing:
            self.read_errors.append(f"the sampler process did not find {missing}")
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the last line, cut by SIGTERM
            if "cpu_s" in record:
                self.sampler_cpu_s = record["cpu_s"]
                continue
            raw = [record["raw"][index[s]] if s in index else None for s in self.scopes]
            self.readings.append((record["t"], raw))
            if any(p is not None for p in record.get("power_w", [])):
                self.power_w.append((record["t"], [record["power_w"][index[s]] if s in index else None
                                                   for s in self.scopes]))

    # -- results ----------------------------------------------------------------------

    def merged(self) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """(t since start, energy since start in J per reading and meter, longest gap per meter)."""
        if self._merged is None:
            readings = sorted(self.readings, key=lambda r: r[0])
            t = np.array([r[0] for r in readings], dtype=float) - (self.t0 or 0.0)
            energy = np.zeros((len(readings), len(self.meters)))
            gaps = []
            for i, meter in enumerate(self.meters):
                total, last, last_t, gap = 0, None, None, 0.0
                for k, (tk, raw) in enumerate(readings):
                    value = raw[i]
                    if value is not None:
                        if last is not None:
                            total += counter_delta(last, value, meter.range_uj)
                            gap = max(gap, tk - last_t)
                        last, last_t = value, tk
                    energy[k, i] = total / 1e6
                gaps.append(gap)
            self._merged = (t, energy, gaps)
        return self._merged

    def _energy_at(self, t_abs: float) -> np.ndarray:
        t, energy, _ = self.merged()
        k = int(np.searchsorted(t, t_abs - (self.t0 or 0.0), side="right")) - 1
        return energy[max(k, 0)]

    def phase_energy_j(self) -> dict[str, list[float]]:
        """Joules per meter between each mark and the next (the last mark ends the last phase)."""
        return {name: list(map(float, self._energy_at(t1) - self._energy_at(t0)))
                for (name, t0), (_, t1) in zip(self.marks, self.marks[1:])}

    def phase_time_s(self) -> dict[str, tuple[float, float]]:
        return {name: (t0 - self.t0, t1 - self.t0) for (name, t0), (_, t1) in zip(self.marks, self.marks[1:])}

    def wrap_margin(self) -> list[float | None]:
        """Per meter: time to count through the whole range at the highest power seen between
        two readings, over the longest gap between readings. Above 2 no wrap was missed."""
        t, energy, gaps = self.merged()
        out = []
        for i, meter in enumerate(self.meters):
            dt, de = np.diff(t), np.diff(energy[:, i])
            power = float(np.max(de[dt > 0] / dt[dt > 0])) if np.any(dt > 0) else 0.0
            if not meter.range_uj or power <= 0 or gaps[i] <= 0:
                out.append(None)
            else:
                out.append(meter.range_uj / 1e6 / power / gaps[i])
        return out

    def tree(self) -> dict:
        """This node's meters for the run record: description, time series, phase energies."""
        t, energy, _ = self.merged()
        phases, times, margins = self.phase_energy_j(), self.phase_time_s(), self.wrap_margin()
        tree = {"attrs": {"interval_s": self.interval_s, "n_readings": len(t),
                          "sampled_by": "process" if self.recipe is not None and self.interval_s > 0 else "marks only",
                          "read_errors": "; ".join(self.read_errors),
                          "sampler_cpu_s": self.sampler_cpu_s if self.sampler_cpu_s is not None else "",
                          "sampler_startup_s": self.sampler_startup_s if self.sampler_startup_s is not None else ""}}
        for i, meter in enumerate(self.meters):
            meter_tree = {
                "attrs": {**meter.describe(), "wrap_margin": margins[i] if margins[i] is not None else "",
                          **{f"energy_{name}_j": values[i] for name, values in phases.items()},
                          **{f"t_{name}_s": t1 - t0 for name, (t0, t1) in times.items()}},
                "t_s": t, "energy_j": energy[:, i].copy(),
            }
            if self.power_w and any(p[1][i] is not None for p in self.power_w):
                # the meter's own power readings (NVML)
                meter_tree["power_t_s"] = np.array([p[0] for p in self.power_w]) - (self.t0 or 0.0)
                meter_tree["power_w"] = np.array([np.nan if p[1][i] is None else p[1][i] for p in self.power_w])
            elif len(t) > 1:
                # average power between consecutive readings, at their midpoints (from the counter)
                dt = np.diff(t)
                keep = dt > 0
                meter_tree["power_t_s"] = ((t[1:] + t[:-1]) / 2)[keep]
                meter_tree["power_w"] = (np.diff(energy[:, i]) / np.where(dt > 0, dt, 1))[keep]
            tree[meter.scope] = meter_tree
        return tree
