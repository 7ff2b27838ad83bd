"""Energy meters, one interface for every source (see docs/energy.md).

A meter is a cumulative energy counter of one scope on one node: a RAPL zone (package-0,
dram-0), a GPU (gpu-0), or a declared power model. What a source cannot give is an
`Unavailable` with its reason, recorded as such: nothing is estimated in secret.

- rapl.py:     Linux powercap (intel-rapl:N[:M]), read as files; wrap-safe
- nvml.py:     NVIDIA GPUs through nvidia-ml-py (total-energy counter, power samples)
- model.py:    a power model the user declares for a machine without sensors (modelled)
- sampler.py:  one background thread per node: samples every meter, marks phase boundaries
- discover.py: which meters this node has, given the machine's energy settings
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("measured", "accounted", "modelled")


def as_text(value) -> str:
    """h5py and NVML hand back bytes in some versions, str in others."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Unavailable:
    """A source that gives no energy here, and why (e.g. permission denied)."""

    source: str
    reason: str


class Meter:
    """A cumulative energy counter. read_uj() returns the raw counter in microjoules;
    range_uj is where it wraps back to 0 (None: it does not wrap in practice)."""

    source: str = ""   # rapl | nvml | model
    scope: str = ""    # package-0, dram-0, gpu-0, node
    kind: str = "measured"
    range_uj: int | None = None

    def read_uj(self) -> int:
        raise NotImplementedError

    def power_w(self) -> float | None:
        """An instantaneous power reading where the source has one (NVML), else None."""
        return None

    def describe(self) -> dict:
        return {"source": self.source, "scope": self.scope, "kind": self.kind,
                "range_uj": self.range_uj if self.range_uj is not None else ""}
