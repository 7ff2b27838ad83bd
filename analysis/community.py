"""Published PD14 performance results: the community's reference points.

Read from one data file, analysis/data/community_pd14.yaml, which names its source (the
table of Senk et al. 2026, Neuromorph. Comput. Eng. 6:012001, kept as
docs/benchmarking/_scripts/performance_data_raw.yaml in INM-6/microcircuit-PD14-model) and
the date it was written: all 14 points of that table, full-scale PD14 (77,169 neurons,
about 3e8 synapses), real-time factor and energy per synaptic event of the simulation
phase, with the drive each study used. A study that published no energy has esyn_uj None
(never a guess). A malformed entry is refused with the file, the entry and the key named.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

DATA_FILE = Path(__file__).resolve().parent / "data" / "community_pd14.yaml"
DRIVES = ("DC", "Poisson")
NODE_UNITS = ("node", "board")


class CommunityDataError(ValueError):
    """The community data file is malformed: which file, entry and key, and what is allowed."""


@dataclass(frozen=True)
class CommunityResult:
    study: str
    platform: str
    nodes: int  # compute nodes, or boards for SpiNNaker (node_unit)
    rtf: float  # real-time factor: wall-clock time of the simulation phase / model time
    esyn_uj: float | None  # energy per synaptic event (microjoules); None where not published
    drive: str  # external drive: "DC" or "Poisson"
    node_unit: str = "node"

    @property
    def nodes_text(self) -> str:
        return f"{self.nodes} {self.node_unit}{'s' if self.nodes != 1 else ''}"

    @property
    def label(self) -> str:
        """Study, platform, size and drive: what a reference point is labelled with."""
        return f"{self.study}: {self.platform}, {self.nodes_text}, {self.drive}"


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


# key -> (check, what is allowed); esyn_uj may also be null (not published)
_FIELDS = {
    "study": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "platform": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "nodes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "node_unit": (lambda v: v in NODE_UNITS, f"one of {', '.join(NODE_UNITS)}"),
    "rtf": (_positive_number, "a positive number"),
    "esyn_uj": (lambda v: v is None or _positive_number(v), "a positive number, or null where not published"),
    "drive": (lambda v: v in DRIVES, f"one of {', '.join(DRIVES)}"),
}


def _error(path: Path, where: str, message: str) -> CommunityDataError:
    return CommunityDataError(f"{path}: {where}: {message}")


def read_community(path: str | Path = DATA_FILE) -> tuple[dict, tuple[CommunityResult, ...]]:
    """(source, points) of a community data file; source is its `source` block plus `date`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _error(path, "file", f"cannot be read as YAML ({exc})") from None
    if not isinstance(data, dict):
        raise _error(path, "file", "must be a mapping with keys source, date, points")
    for key in ("source", "date", "points"):
        if key not in data:
            raise _error(path, key, "missing (the file must name its source and date, and list its points)")
    if not isinstance(data["source"], dict) or not data["source"].get("table"):
        raise _error(path, "source.table", "missing: name the publication the points come from")
    if not isinstance(data["points"], list) or not data["points"]:
        raise _error(path, "points", "must be a non-empty list of entries")
    points = []
    for i, entry in enumerate(data["points"]):
        name = entry.get("study", "?") if isinstance(entry, dict) else "?"
        where = f"points[{i}] ({name})"
        if not isinstance(entry, dict):
            raise _error(path, where, f"must be a mapping of {', '.join(_FIELDS)}")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise _error(path, f"{where}.{unknown[0]}", f"unknown key; allowed: {', '.join(_FIELDS)}")
        for key, (ok, allowed) in _FIELDS.items():
            if key not in entry:
                raise _error(path, f"{where}.{key}", f"missing; must be {allowed}")
            if not ok(entry[key]):
                raise _error(path, f"{where}.{key}", f"{entry[key]!r} is not allowed; must be {allowed}")
        points.append(CommunityResult(study=entry["study"], platform=entry["platform"], nodes=entry["nodes"],
                                      rtf=float(entry["rtf"]),
                                      esyn_uj=None if entry["esyn_uj"] is None else float(entry["esyn_uj"]),
                                      drive=entry["drive"], node_unit=entry["node_unit"]))
    labels = [p.label for p in points]  # the figure's key tells points apart by their label
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise _error(path, "points", f"two entries with the same study, platform, nodes and drive: {duplicates[0]}")
    return {**data["source"], "date": str(data["date"])}, tuple(points)


SOURCE, COMMUNITY = read_community()


def source_text(source: dict = SOURCE) -> str:
    """One line naming where the points come from and when they were written down."""
    return f"{' '.join(str(source['table']).split())}; {source.get('data_file', '')} " \
           f"in {source.get('repository', '')} (as of {source['date']})"


def community_table(community: tuple[CommunityResult, ...] = COMMUNITY) -> pd.DataFrame:
    """The table as a DataFrame (esyn_uj NaN where not published), with each point's label."""
    frame = pd.DataFrame([asdict(r) | {"label": r.label} for r in community])
    frame["esyn_uj"] = pd.to_numeric(frame["esyn_uj"], errors="coerce")
    return frame


def main(argv=None) -> int:
    """Write the published points as CSV, each row with the source and date (rule community_table)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    table = community_table().assign(source=source_text(), date=SOURCE["date"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"{len(table)} published points from {DATA_FILE} ({source_text()})")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
