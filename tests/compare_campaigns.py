"""Compare two results folders of the same campaign, timings aside: does a change of code
keep what a campaign records?

    .venvs/workflow/bin/python tests/compare_campaigns.py BEFORE/results/default AFTER/results/default

Compares runs.csv (the same columns in the same order, the same runs, the same values in
every column that is not a timing, a memory figure or provenance) and campaign.h5 (the same
summary datasets; for each run's record the same groups, datasets and attributes, every
dataset equal, spikes included, and every attribute equal unless it is a timing, a memory
figure or provenance). Prints what differs and exits 1 if anything does; additions to the
records can be allowed by name (--allow-added).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

# What a change of code may change without changing what was simulated: measured times and
# memory, and the provenance of the files themselves.
MEASURED = re.compile(
    r"^(t_(setup|create|connect|construct|compile|load|presim|sim|collect|total)_s(_rank_(min|mean|max))?"
    r"|rtf|imbalance_sim|mem_.*|wall_s|order_unused|time_.*|spynnaker_(mapping|loading|running|.*)_s"
    r"|started_at|finished_at|file_sha256|git_commit|git_dirty|argv|config_sha256|python_executable|context"
    r"|summary_json|cpu_s|t_idle_s|.*_seconds|energy_.*_j|t_(presimulate|simulate|idle|create|connect|setup|"
    r"collect|compile|load)_s|SLURM_.*|host|cores_usable|load_.*|timestamp_.*)$")
# groups whose every attribute is provenance of the process, not of the simulation
PROVENANCE_GROUPS = ("provenance", "kernel_timers", "phases")


# A run's own temporary directory (random name) inside a text, e.g. sPyNNaker's configuration.
TEMP_DIR = re.compile(r"/tmp/spikescale-[^/\s]+")


def _equal(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return TEMP_DIR.sub("<tmp>", a) == TEMP_DIR.sub("<tmp>", b)
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype.kind == b.dtype.kind and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return a == b


def compare_csv(before: Path, after: Path) -> list[str]:
    old, new = pd.read_csv(before / "runs.csv"), pd.read_csv(after / "runs.csv")
    problems = []
    if list(old.columns) != list(new.columns):
        problems.append(f"runs.csv columns differ: only before {sorted(set(old.columns) - set(new.columns))}, "
                        f"only after {sorted(set(new.columns) - set(old.columns))}, or their order")
    if sorted(old["run_id"]) != sorted(new["run_id"]):
        problems.append("runs.csv: different runs")
        return problems
    old, new = old.set_index("run_id").sort_index(), new.set_index("run_id").sort_index()
    compared = 0
    for column in old.columns.intersection(new.columns):
        if MEASURED.match(column):
            continue
        compared += 1
        for run_id in old.index:
            if not _equal(old.at[run_id, column], new.at[run_id, column]):
                problems.append(f"runs.csv {run_id} {column}: {old.at[run_id, column]!r} -> {new.at[run_id, column]!r}")
    print(f"runs.csv: {len(old)} runs, {compared} of {len(old.columns)} columns compared value by value "
          "(the others are timings, memory or provenance)")
    return problems


def _walk(group: h5py.Group, prefix: str = "") -> dict:
    """path -> ('group', attrs) or ('dataset', value, attrs)"""
    out = {}
    for name, item in group.items():
        path = f"{prefix}/{name}"
        attrs = {k: item.attrs[k] for k in item.attrs}
        if isinstance(item, h5py.Group):
            out[path] = ("group", attrs)
            out.update(_walk(item, path))
        else:
            out[path] = ("dataset", item[()], attrs)
    return out


def compare_h5(before: Path, after: Path, allow_added: set[str]) -> list[str]:
    problems = []
    with h5py.File(before / "campaign.h5") as old_fh, h5py.File(after / "campaign.h5") as new_fh:
        if sorted(old_fh["summary"]) != sorted(new_fh["summary"]):
            problems.append("campaign.h5 /summary datasets differ")
        old_runs, new_runs = sorted(old_fh["runs"]), sorted(new_fh["runs"])
        if old_runs != new_runs:
            return problems + ["campaign.h5: different runs"]
        n_datasets = n_attrs = 0
        for run_id in old_runs:
            old, new = _walk(old_fh["runs"][run_id]), _walk(new_fh["runs"][run_id])
            for path in sorted(set(old) - set(new)):
                problems.append(f"{run_id}{path}: only before")
            for path in sorted(set(new) - set(old)):
                if path.rsplit("/", 1)[-1] not in allow_added:
                    problems.append(f"{run_id}{path}: only after")
            for path in sorted(set(old) & set(new)):
                kind, *rest = old[path]
                in_provenance = any(part in PROVENANCE_GROUPS for part in path.split("/"))
                if kind == "dataset" and not in_provenance and not MEASURED.match(path.rsplit("/", 1)[-1]):
                    n_datasets += 1
                    if not _equal(rest[0], new[path][1]):
                        problems.append(f"{run_id}{path}: dataset differs")
                old_attrs, new_attrs = old[path][-1], new[path][-1]
                for name in sorted(set(old_attrs) | set(new_attrs)):
                    if name not in new_attrs:
                        problems.append(f"{run_id}{path}@{name}: only before")
                    elif name not in old_attrs:
                        if name not in allow_added:
                            problems.append(f"{run_id}{path}@{name}: only after")
                    elif not in_provenance and not MEASURED.match(name):
                        n_attrs += 1
                        if not _equal(old_attrs[name], new_attrs[name]):
                            problems.append(f"{run_id}{path}@{name}: {old_attrs[name]!r} -> {new_attrs[name]!r}")
        print(f"campaign.h5: {len(old_runs)} records, {n_datasets} datasets and {n_attrs} attributes compared "
              "value by value (spikes included)")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="results/<campaign> of the old code")
    parser.add_argument("after", type=Path, help="results/<campaign> of the new code")
    parser.add_argument("--allow-added", nargs="*", default=[], help="names of attributes or datasets the new "
                        "code may add to a record")
    args = parser.parse_args(argv)
    problems = compare_csv(args.before, args.after) + compare_h5(args.before, args.after, set(args.allow_added))
    for problem in problems[:200]:
        print(f"DIFFERS: {problem}")
    print(f"{len(problems)} difference(s)" + (" (first 200 shown)" if len(problems) > 200 else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
