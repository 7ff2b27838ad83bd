"""Compare campaigns, software variants or machines on what they share:
``python -m spikescale.analysis.compare``.

Groups are labelled by campaign, ``variant`` (the software variant, a runs.csv column; a
runs.csv without it is its campaign's single software) or ``machine`` (``--by``). The first
group (or ``--reference``) is the reference; every other group is compared with it, per
backend, model (N_scaling, K_scaling, drive, model time) and resource shape (nodes, tasks
per node, threads per task) that both have. Per metric (METRICS):

    ratio = median(candidate) / median(reference)

with a percentile bootstrap 95 % interval: each side's runs (seeds and repetitions) are
resampled with replacement, independently, ``resamples`` times, and the ratio of the two
resampled medians is taken each time; the interval is the 2.5th and 97.5th percentile of
those ratios. The random generator is seeded from ``--seed`` and the row's own key, so a
row's interval does not change when other groups or shapes are added; a key's metrics share
its resampled runs.

Verdict, at tolerance tol (default 5 %), for a metric where more is worse (all of METRICS):

    interval entirely above 1 + tol        -> slower (more memory, more energy)
    interval entirely below 1 / (1 + tol)  -> faster (less memory, less energy)
    otherwise                              -> no detectable change

The band is symmetric in ratio: 1.05 and 1/1.05 are the same change seen from either side,
so comparing a with b and b with a gives mirrored verdicts. No verdict from fewer than
MIN_RUNS undisturbed ok runs on a side, or where a side's figure is empty (not measured);
the row's ``reason`` says which. Only ``status == ok`` performance runs count (validation
runs record spikes, which costs time); runs flagged ``disturbed`` never count, and a
runs.csv without that column is reported as "disturbed: not measured".
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from spikescale.analysis.compare_keys import KEY, describe_key
from spikescale.analysis.scaling import is_emulated, performance_runs

# metric -> what more of it is called, and what less is (every metric here: more is worse)
METRICS = {
    "t_sim_s": ("slower", "faster"),
    "rtf": ("slower", "faster"),
    "t_construct_s": ("slower", "faster"),
    "mem_peak_mb_max": ("more memory", "less memory"),
    "esyn_uj": ("more energy", "less energy"),
}
AXES = ("campaign", "variant", "machine", "backend")
DEFAULT_TOLERANCE = 0.05
# Fewer than 3 runs give no interval worth the name: with 1 run the resampled median is that
# run (an interval of zero width, which would call any noise a change); with 2 it takes 3
# values. With 3 per side the 95 % interval of each median is the range of its runs, so a
# verdict then needs every run of one side to differ from every run of the other by more
# than the tolerance: conservative, and honest about what 3 runs can show.
MIN_RUNS = 3
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 14
CONFIDENCE = 0.95
SINGLE_SOFTWARE = "(single software)"
# Elements of one resampling block (resamples x runs): bounds memory at about 64 MB of float64.
_BLOCK_ELEMENTS = 8_000_000

MAX_REASONS_PRINTED = 20
VERDICTS = ("slower", "faster", "no detectable change", "no verdict", "not measured")

COLUMNS = ["by", "reference", "candidate", *KEY, "metric", "n_reference", "n_candidate",
           "n_reference_disturbed", "n_candidate_disturbed", "disturbed", "median_reference", "median_candidate",
           "ratio", "ci_low", "ci_high", "tolerance", "verdict", "reason"]


# ---------------------------------------------------------------- reading

def read_runs(path: str | Path) -> pd.DataFrame:
    """runs.csv of a campaign (its folder or the file), with ``_source`` (the path given)
    and ``variant`` filled where runs.csv has none: the software file the campaign's
    config_resolved.json names, else SINGLE_SOFTWARE."""
    path = Path(path)
    csv = path if path.suffix == ".csv" else path / "runs.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: no such file (a campaign's runs.csv, written by its collect step)")
    runs = pd.read_csv(csv, low_memory=False)
    # consolidated once (read_csv leaves ~100 blocks, and each new column would warn), then labelled
    # _disturbed_column: whether this runs.csv measured disturbance at all (after a concat with
    # another that did, its missing column would look like empty cells)
    runs = runs.copy().assign(_source=str(path), _disturbed_column="disturbed" in runs)
    if "variant" not in runs or runs["variant"].isna().all():
        runs["variant"] = _single_software(csv.parent)
    else:
        runs["variant"] = runs["variant"].fillna(_single_software(csv.parent)).astype(str)
    if "campaign" not in runs:
        runs["campaign"] = csv.parent.name
    return runs


def _single_software(folder: Path) -> str:
    try:
        software = json.loads((folder / "config_resolved.json").read_text())["experiment"]["software"]
    except (OSError, ValueError, KeyError, TypeError):
        return SINGLE_SOFTWARE
    return software if isinstance(software, str) else SINGLE_SOFTWARE


def parse_disturbed(runs: pd.DataFrame) -> pd.Series | None:
    """True/False per run from the ``disturbed`` column; NA where a cell is empty; None
    when runs.csv has no such column (not measured)."""
    if "disturbed" not in runs:
        return None
    text = runs["disturbed"].astype(str).str.strip().str.lower()
    out = pd.Series(pd.NA, index=runs.index, dtype="boolean")
    out[text.isin(("true", "1", "yes"))] = True
    out[text.isin(("false", "0", "no"))] = False
    return out


def label_groups(runs: pd.DataFrame, by: str) -> pd.Series:
    """The group of each run on the chosen axis. Two folders given with the same campaign
    name (a campaign compared with a copy of itself) keep apart: the later is suffixed [2]."""
    if by not in AXES:
        raise ValueError(f"--by {by!r}: allowed: {', '.join(AXES)}")
    if by == "backend":  # an emulated platform is a backend of its own (prepare)
        emulated = is_emulated(runs)
        return runs["backend"].astype(str).where(~emulated, runs["backend"].astype(str) + " (emulated)")
    if by != "campaign":
        if by not in runs:
            raise ValueError(f"--by {by}: runs.csv has no {by!r} column")
        return runs[by].fillna("(empty)").astype(str)
    labels = runs["campaign"].astype(str)
    seen: dict[str, list[str]] = {}
    for source in dict.fromkeys(runs["_source"]) if "_source" in runs else []:
        name = str(runs.loc[runs["_source"] == source, "campaign"].iloc[0])
        seen.setdefault(name, []).append(source)
    for name, sources in seen.items():
        for i, source in enumerate(sources[1:], start=2):
            labels[runs["_source"] == source] = f"{name} [{i}]"
    return labels


def prepare(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """The runs that may count: ok performance runs, an emulated platform as a backend of its
    own ('<backend> (emulated)', its times are the emulator's), ``_group``, ``_disturbed``
    (bool or NA), numeric metrics."""
    runs = runs.copy()
    runs["_group"] = label_groups(runs, by)
    disturbed = parse_disturbed(runs)
    runs["_disturbed"] = disturbed if disturbed is not None else pd.Series(pd.NA, index=runs.index, dtype="boolean")
    if "_disturbed_column" in runs:
        runs["_disturbed_measured"] = runs["_disturbed_column"].astype(bool)
    else:
        runs["_disturbed_measured"] = disturbed is not None
    ok = performance_runs(runs)
    ok = ok[ok["status"].astype(str) == "ok"].copy()
    emulated = is_emulated(ok)
    ok["backend"] = ok["backend"].astype(str)
    ok.loc[emulated, "backend"] = ok.loc[emulated, "backend"] + " (emulated)"
    for col in KEY[1:]:
        if col != "drive":
            ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else np.nan
    if "drive" not in ok:
        ok["drive"] = ""
    for col in METRICS:
        ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else np.nan
    return ok


# ---------------------------------------------------------------- statistics

def median_ranks(n: int, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For `resamples` resamples with replacement of n sorted values: the positions of the two
    middle order statistics (equal for odd n). The k-th smallest of sorted[idx] is
    sorted[k-th smallest of idx], so the resampled median is read off the sorted values
    without gathering them: one partition of small integers per resample (vectorised, in
    blocks to bound memory)."""
    low, high = np.empty(resamples, dtype=np.int64), np.empty(resamples, dtype=np.int64)
    k_low, k_high = (n - 1) // 2, n // 2
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = np.partition(rng.integers(0, n, size=(stop - start, n), dtype=np.int32), sorted({k_low, k_high}), axis=1)
        low[start:stop], high[start:stop] = idx[:, k_low], idx[:, k_high]
    return low, high


def bootstrap_medians(values: np.ndarray, resamples: int, rng: np.random.Generator,
                      ranks: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`resamples` medians of `values` resampled with replacement; `ranks`: median_ranks of
    the same length, drawn before (shared by the metrics of one row key)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    low, high = ranks if ranks is not None else median_ranks(len(ordered), resamples, rng)
    return (ordered[low] + ordered[high]) / 2


class Resampler:
    """The resamples of one row key: drawn once per side and number of runs from a generator
    seeded by the seed and the key (reproducible, and independent of which other rows are
    computed), then shared by the key's metrics."""

    def __init__(self, seed: int, key: tuple, resamples: int):
        self.resamples = resamples
        self._rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        self._ranks: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def medians(self, side: str, values: np.ndarray) -> np.ndarray:
        if (side, len(values)) not in self._ranks:
            self._ranks[side, len(values)] = median_ranks(len(values), self.resamples, self._rng)
        return bootstrap_medians(values, self.resamples, self._rng, self._ranks[side, len(values)])


def ratio_interval(reference: np.ndarray, candidate: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                   resampler: Resampler | None = None, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """median(candidate) / median(reference) and its percentile bootstrap interval, each side
    resampled on its own."""
    resampler = resampler if resampler is not None else Resampler(DEFAULT_SEED, (), resamples)
    ratio = float(np.median(candidate) / np.median(reference))
    ratios = resampler.medians("candidate", candidate) / resampler.medians("reference", reference)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return ratio, float(low), float(high)


def verdict(low: float, high: float, tolerance: float, metric: str = "t_sim_s") -> tuple[str, str]:
    """The verdict on an interval of ratios (module docstring) and why."""
    more, less = METRICS[metric]
    up, down = 1 + tolerance, 1 / (1 + tolerance)
    interval = f"95 % interval [{low:.3g}, {high:.3g}]"
    if low > up:
        return more, f"{interval} lies above {up:.3g} (+{tolerance:.0%})"
    if high < down:
        return less, f"{interval} lies below {down:.3g} (1/(1+{tolerance:.0%}))"
    if low >= down and high <= up:
        return "no detectable change", f"{interval} lies within [{down:.3g}, {up:.3g}]"
    return "no detectable change", (f"{interval} reaches over the band [{down:.3g}, {up:.3g}]: a change of "
                                    f"{tolerance:.0%} cannot be told from run-to-run spread with these runs")


def _side_values(side: pd.DataFrame, metric: str) -> tuple[np.ndarray, int, int]:
    """Values that count (undisturbed, measured), the number of disturbed runs left out,
    and the number of undisturbed runs without this figure."""
    undisturbed = side[side["_disturbed"].fillna(False).astype(bool) == False]
    values = undisturbed[metric].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    return finite, len(side) - len(undisturbed), len(values) - len(finite)


ENERGY_METRICS = ("esyn_uj",)


def _energy_kinds(side: pd.DataFrame) -> set[str]:
    """The energy kinds (measured, accounted, modelled) of a side's runs that have energy."""
    if "energy_kind" not in side:
        return set()
    return {str(k) for k in side.loc[side["esyn_uj"].notna(), "energy_kind"].dropna().unique() if str(k).strip()}


def compare_pair(ref: pd.DataFrame, cand: pd.DataFrame, metric: str, tolerance: float, min_runs: int,
                 resampler: Resampler) -> dict:
    """One row: one metric of one shared key, candidate against reference."""
    a, a_dist, a_empty = _side_values(ref, metric)
    b, b_dist, b_empty = _side_values(cand, metric)
    row = {"metric": metric, "n_reference": len(a), "n_candidate": len(b), "n_reference_disturbed": a_dist,
           "n_candidate_disturbed": b_dist, "tolerance": tolerance, "median_reference": np.nan,
           "median_candidate": np.nan, "ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    unmeasured = [side for side, frame in (("reference", ref), ("candidate", cand))
                  if not frame["_disturbed_measured"].all()]
    unknown = int(ref["_disturbed"].isna().sum() + cand["_disturbed"].isna().sum())
    row["disturbed"] = (f"not measured for the {' and the '.join(unmeasured)} (no 'disturbed' column in its runs.csv; "
                        "every run counts)" if unmeasured else
                        f"measured; {unknown} run(s) without a value count as undisturbed" if unknown else "measured")
    if len(a):
        row["median_reference"] = float(np.median(a))
    if len(b):
        row["median_candidate"] = float(np.median(b))
    if not len(a) or not len(b):
        empty = [side for side, n, n_empty in (("reference", len(a), a_empty), ("candidate", len(b), b_empty))
                 if n == 0 and n_empty]
        if empty:
            row["verdict"] = "not measured"
            row["reason"] = f"{metric} is empty in every counted run of the {' and the '.join(empty)}"
            return row
    left_out = ("" if not (a_dist or b_dist) else
                f" after leaving out {a_dist} disturbed reference and {b_dist} disturbed candidate run(s)")
    if metric in ENERGY_METRICS:
        kinds = [_energy_kinds(side) for side in (ref, cand)]
        if all(kinds) and kinds[0] != kinds[1]:
            row["verdict"] = "no verdict"
            row["reason"] = (f"energy of another kind on each side ({', '.join(sorted(kinds[0]))} against "
                             f"{', '.join(sorted(kinds[1]))}): measured, accounted and modelled energies are not compared")
            return row
    if len(a) < min_runs or len(b) < min_runs:
        row["verdict"] = "no verdict"
        row["reason"] = (f"too few runs: {len(a)} reference, {len(b)} candidate{left_out}; a verdict needs at "
                         f"least {min_runs} per side")
        return row
    if row["median_reference"] <= 0:
        row["verdict"], row["reason"] = "no verdict", f"the reference median of {metric} is {row['median_reference']:g}"
        return row
    ratio, low, high = ratio_interval(a, b, resampler.resamples, resampler)
    row.update(ratio=ratio, ci_low=low, ci_high=high)
    row["verdict"], row["reason"] = verdict(low, high, tolerance, metric)
    row["reason"] += left_out
    return row


def row_key(by: str) -> list[str]:
    """What rows are keyed by: KEY, less the axis compared (by backend: the backends are the
    groups, compared on the model and shape they share)."""
    return [c for c in KEY if c != by]


def group_order(runs: pd.DataFrame, by: str, reference: str | None) -> list[str]:
    """Groups in the order given (folders, then first appearance); the reference first."""
    order = list(dict.fromkeys(label_groups(runs, by)))
    if reference is not None:
        if reference not in order:
            raise ValueError(f"--reference {reference!r}: no such {by}; the runs have: {', '.join(order)}")
        order.remove(reference)
        order.insert(0, reference)
    return order


def compare(runs: pd.DataFrame, by: str = "campaign", reference: str | None = None,
            tolerance: float = DEFAULT_TOLERANCE, min_runs: int = MIN_RUNS, resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED, metrics=tuple(METRICS)) -> pd.DataFrame:
    """One row per candidate group, shared key and metric (COLUMNS); runs as read_runs
    gives them (several campaigns concatenated)."""
    if tolerance < 0 or not np.isfinite(tolerance):
        raise ValueError(f"tolerance {tolerance!r}: must be a finite number >= 0 (0.05 for 5 %)")
    if min_runs < MIN_RUNS:
        raise ValueError(f"min_runs {min_runs}: must be at least {MIN_RUNS} (see compare.MIN_RUNS for why)")
    groups = group_order(runs, by, reference)
    if len(groups) < 2:
        raise ValueError(f"--by {by}: only one {by} in these runs ({', '.join(groups) or 'none'}); "
                         "comparing needs two or more")
    ok = prepare(runs, by)
    key_columns = row_key(by)
    by_group = {g: dict(tuple(frame.groupby(key_columns, sort=True, dropna=False)))
                for g, frame in ok.groupby("_group")}
    ref_name = groups[0]
    ref_keys = by_group.get(ref_name, {})
    rows = []
    for cand_name in groups[1:]:
        cand_keys = by_group.get(cand_name, {})
        for key in sorted(set(ref_keys) & set(cand_keys), key=repr):
            resampler = Resampler(seed, (ref_name, cand_name, *key), resamples)
            for metric in metrics:
                row = {"by": by, "reference": ref_name, "candidate": cand_name, **dict(zip(key_columns, key, strict=True))}
                row |= compare_pair(ref_keys[key], cand_keys[key], metric, tolerance, min_runs, resampler)
                rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table


def unshared(runs: pd.DataFrame, by: str = "campaign", reference: str | None = None) -> list[str]:
    """What was not compared: each backend, model and shape that only some groups have."""
    ok = prepare(runs, by)
    groups = group_order(runs, by, reference)
    keys = {g: set(frame.groupby(row_key(by), dropna=False).groups) for g, frame in ok.groupby("_group")}
    everything = set().union(*keys.values()) if keys else set()
    lines = []
    for key in sorted(everything, key=repr):
        have = [g for g in groups if key in keys.get(g, set())]
        if len(have) < len(groups):
            lines.append(f"{describe_key(dict(zip(row_key(by), key, strict=True)))}: only in {', '.join(have)}")
    for g in groups:
        if g not in keys:
            lines.append(f"{g}: no ok performance run at all")
    return lines


# ---------------------------------------------------------------- command

def summary_lines(table: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """The printed summary: counts of verdicts, and whether disturbance was measured."""
    lines = []
    if "_disturbed_column" in runs:
        without = sorted(runs.loc[~runs["_disturbed_column"].astype(bool), "_source"].astype(str).unique())
    else:
        without = [] if "disturbed" in runs else ["the runs given"]
    if without:
        lines.append(f"disturbed: not measured in {', '.join(without)} (its runs.csv has no 'disturbed' column): runs "
                     "slowed by other load cannot be told apart there and every run counts")
    for (ref, cand), part in table.groupby(["reference", "candidate"], sort=False):
        counts = part["verdict"].value_counts()
        text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts)
        lines.append(f"{cand} against {ref}: {text} (of {len(part)} metric x shape rows)")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="the verdict rule: docs/comparing.md")
    parser.add_argument("campaigns", nargs="+", type=Path,
                        help="campaign folders (results/<name>) or runs.csv files")
    parser.add_argument("--by", choices=AXES, default="campaign", help="what the groups are (default: campaign)")
    parser.add_argument("--reference", help="the group the others are compared with (default: the first)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"relative change below which nothing is called (default {DEFAULT_TOLERANCE})")
    parser.add_argument("--min-runs", type=int, default=MIN_RUNS, help=f"runs per side for a verdict (>= {MIN_RUNS})")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap's generator")
    parser.add_argument("--table", type=Path, help="write the table here (CSV)")
    parser.add_argument("--png", type=Path, help="write the figure here")
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    try:
        # each argument a source of its own, so that a folder given twice is two groups
        sources = [f"{p} (#{i + 1})" if str(p) in map(str, args.campaigns[:i]) else str(p)
                   for i, p in enumerate(args.campaigns)]
        runs = pd.concat([read_runs(p).assign(_source=source) for p, source in zip(args.campaigns, sources,
                                                                                    strict=True)], ignore_index=True)
        table = compare(runs, args.by, args.reference, args.tolerance, args.min_runs, args.resamples, args.seed)
        missing = unshared(runs, args.by, args.reference)
    except (FileNotFoundError, ValueError) as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.table, index=False, float_format="%.6g")
    if args.png:
        from spikescale.analysis.compare_figure import compare_figure  # matplotlib only when drawing
        from spikescale.analysis.plots import save

        save(compare_figure(prepare(runs, args.by), table, group_order(runs, args.by, args.reference),
                            args.tolerance), args.png, args.pdf)
    shown = ["candidate", "backend", "nodes", "tasks_per_node", "threads_per_task", "metric", "n_reference",
             "n_candidate", "ratio", "ci_low", "ci_high", "verdict"]
    if args.by == "campaign" and table["n_scaling"].nunique() > 1:
        shown.insert(2, "n_scaling")
    if table.empty:
        print("nothing shared to compare")
    else:
        print(table.to_string(index=False, columns=shown, float_format=lambda v: f"{v:.3g}"))
    for line in summary_lines(table, runs):
        print(line)
    for line in missing:
        print(f"not compared: {line}")
    reasons = table[table["verdict"].isin(("no verdict", "not measured"))].drop_duplicates(["verdict", "reason"])
    for r in reasons.head(MAX_REASONS_PRINTED).itertuples():
        print(f"{r.verdict}: {r.candidate}, {describe_key(r._asdict())}, {r.metric}: {r.reason}")
    if len(reasons) > MAX_REASONS_PRINTED:
        print(f"... {len(reasons) - MAX_REASONS_PRINTED} more in the table's reason column")
    return 0


if __name__ == "__main__":
    sys.exit(main())
