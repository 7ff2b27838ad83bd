"""Resident memory of this process, in MB (10^6 bytes) everywhere in spikescale.

Linux keeps the current (VmRSS) and peak (VmHWM) resident set size in /proc/self/status.
Writing "5" to /proc/self/clear_refs resets the peak, which gives a peak per phase; where
that is refused the peak covers the process so far, and the record says which.
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


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS. True where the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
