"""A file tree laid out like /sys/class/powercap, for testing the RAPL reader on machines
without RAPL (this one has none). Zones as on a two-socket Intel server: package and DRAM
per socket, plus core and uncore subzones and an MMIO duplicate that must be ignored.
`advance(zone, uj)` moves a counter as the hardware would, wrapping at its range."""

from __future__ import annotations

import os
from pathlib import Path


class FakePowercap:
    def __init__(self, root: Path, sockets=(0, 1), range_uj: int = 262_143_328_850, dram_range_uj: int = 65_712_999_613):
        self.root = Path(root)
        self.zones: dict[str, Path] = {}
        for socket in sockets:
            hex_id = format(socket, "x")  # powercap numbers zones in hexadecimal
            self._zone(f"intel-rapl:{hex_id}", f"package-{socket}", range_uj)
            self._zone(f"intel-rapl:{hex_id}:0", "core", range_uj)
            self._zone(f"intel-rapl:{hex_id}:1", "uncore", range_uj)
            self._zone(f"intel-rapl:{hex_id}:2", "dram", dram_range_uj)
        self._zone("intel-rapl-mmio:0", "package-0", range_uj)

    def _zone(self, dirname: str, name: str, range_uj: int) -> None:
        path = self.root / dirname
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
        (path / "energy_uj").write_text("0\n")
        self.zones[dirname] = path

    def set(self, dirname: str, value_uj: int) -> None:
        # Atomic, as a sysfs read is: a reader never sees a half-written file.
        tmp = self.zones[dirname] / "energy_uj.tmp"
        tmp.write_text(f"{value_uj}\n")
        os.replace(tmp, self.zones[dirname] / "energy_uj")

    def get(self, dirname: str) -> int:
        return int((self.zones[dirname] / "energy_uj").read_text())

    def advance(self, dirname: str, uj: int) -> None:
        rng = int((self.zones[dirname] / "max_energy_range_uj").read_text())
        self.set(dirname, (self.get(dirname) + uj) % rng)
