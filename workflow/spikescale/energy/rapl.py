"""RAPL energy counters through Linux powercap, read as plain files.

Layout (Intel, and AMD Zen under the same names): /sys/class/powercap/intel-rapl:<p> is
package p (its `name` file says "package-<p>"), intel-rapl:<p>:<s> its subzones ("dram",
"core", "uncore"); each has `energy_uj` (a counter in microjoules) and
`max_energy_range_uj` (where it wraps). Zone numbers are hexadecimal (intel-rapl:a is
package 10). We read package and DRAM zones (core and uncore are inside package); psys
(whole platform, some laptops) is reported too when present.

Why our own reader and not pyRAPL: pyRAPL takes `end - begin` with no wrap handling (the
counter wraps within about a minute under load on some machines), and is unmaintained since
2019. Reading the files is all it does besides; the wrap-safe delta is in sampler.py.

Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694): most cluster users get
"permission denied", which is recorded as the reason RAPL is unavailable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from spikescale.energy import Meter, Unavailable

POWERCAP_ROOT = "/sys/class/powercap"
ZONE_DIR = re.compile(r"^(intel-rapl|amd-rapl):([0-9a-fA-F]+)(?::([0-9a-fA-F]+))?$")
WANTED = re.compile(r"^(package-\d+|dram|psys)$")


class RaplZone(Meter):
    source = "rapl"
    kind = "measured"

    def __init__(self, path: Path, scope: str, range_uj: int):
        self.path = path
        self.scope = scope
        self.range_uj = range_uj
        self._energy_file = path / "energy_uj"

    def read_uj(self) -> int:
        return int(self._energy_file.read_text())

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.path)}


def discover(root: str | os.PathLike | None = None) -> tuple[list[Meter], list[Unavailable]]:
    """The RAPL package and DRAM zones under `root` (default /sys/class/powercap, or
    $SPIKESCALE_POWERCAP_ROOT), or why there are none."""
    root = Path(root or os.environ.get("SPIKESCALE_POWERCAP_ROOT", POWERCAP_ROOT))
    if not root.is_dir():
        return [], [Unavailable("rapl", f"no powercap interface ({root} does not exist)")]
    meters, problems = [], []
    for zone in sorted(root.iterdir(), key=lambda p: p.name):
        match = ZONE_DIR.match(zone.name)
        if not match:
            continue
        try:
            name = (zone / "name").read_text().strip()
        except OSError:
            continue
        if not WANTED.match(name):
            continue
        package = int(match.group(2), 16)
        scope = name if name.startswith("package-") or name == "psys" else f"{name}-{package}"
        try:
            range_uj = int((zone / "max_energy_range_uj").read_text())
            int((zone / "energy_uj").read_text())
        except PermissionError:
            problems.append(Unavailable("rapl", f"permission denied reading {zone / 'energy_uj'} (readable by "
                                                "root only since Linux 5.10, CVE-2020-8694)"))
            continue
        except (OSError, ValueError) as exc:
            problems.append(Unavailable("rapl", f"cannot read {zone}: {exc}"))
            continue
        meters.append(RaplZone(zone, scope, range_uj))
    if not meters and not problems:
        problems.append(Unavailable("rapl", f"no RAPL package or DRAM zones under {root}"))
    return meters, problems
