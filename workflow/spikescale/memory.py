"""Resident memory of this process, in MB (10^6 bytes) everywhere in spikescale.

Linux keeps the current (VmRSS) and peak (VmHWM) resident set size in /proc/self/status.
Writing "5" to /proc/self/clear_refs resets the peak, which gives a peak per phase; where
that is refused the peak covers the process so far, and the record says which.

A backend may run the simulation in a program of its own (Brian2's compiled standalone
program is a child process): a node must hold both, so the peaks of the rank's live child
processes are read and reset the same way (children_peak_mb) and added to the rank's own.
"""

from __future__ import annotations

import resource

BYTES_PER_MB = 1_000_000


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    kib = _status_kib("VmRSS")
    if kib is None:  # not Linux: fall back to the lifetime peak, the best we can read
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024 / BYTES_PER_MB


def peak_mb() -> float:
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024 / BYTES_PER_MB


def _children(exclude: set[int]) -> list:
    """This process's live descendants, less the helpers in exclude (the energy sampler)."""
    import psutil  # every run environment has it (spikescale.provenance needs it too)

    try:
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in exclude]
    except psutil.Error:
        return []


def children_peak_mb(exclude: set[int] = frozenset()) -> float:
    """Sum of the peak resident memory of the live child processes (a child that already
    ended is not seen): an upper bound of what they held at once."""
    total_kib = 0
    for child in _children(set(exclude)):
        try:
            with open(f"/proc/{child.pid}/status", encoding="ascii") as fh:
                total_kib += next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total_kib * 1024 / BYTES_PER_MB


def reset_children_peak(exclude: set[int] = frozenset()) -> None:
    for child in _children(set(exclude)):
        try:
            with open(f"/proc/{child.pid}/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        except OSError:
            pass  # ended meanwhile, or not ours to reset: its peak then covers it so far


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS. True where the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
