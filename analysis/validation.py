"""Did a run simulate PD14? Spike statistics against a NEST reference ensemble.

The accuracy recipe of Senk et al. (2026), Neuromorph. Comput. Eng. 6:012001, after
Dasbach et al. (2021), Front. Neurosci. 15:757790 (docs/validation.md says how this
workflow applies it): discard the warm-up (our presimulation); per population take

* the firing rate of every neuron (silent ones count, with rate 0),
* the coefficient of variation of the inter-spike intervals of every neuron with at least
  ``MIN_SPIKES_FOR_CV`` spikes,
* the Pearson correlation coefficients of spike counts in 2 ms bins between all pairs of a
  subsample of ``CORRELATION_SUBSAMPLE`` active neurons,

with Elephant (ISI, CV, binning, correlation coefficients), the spike-train statistics
library of the field. The reference is an ensemble of NEST runs with different seeds. The
Kolmogorov-Smirnov distances between all pairs of its members are the model's own
variability. A run is compared with every member: its distance for one population and
statistic is the mean over members, and it is inside the spread when that mean does not
exceed the largest distance between two members. A run is valid when at most
``max_outside`` of its (population, statistic) pairs with data lie outside.

Why these choices: the mean over members averages out which member happens to be nearest;
the maximum over member pairs (45 pairs for 10 seeds) is the ensemble's own range. Sampled
on independent Poisson populations (300 neurons), a run of the correct model lies outside in
0.5 % of the tests with 10 members and in 5.5 % with 5 members; with 8 populations x 3
statistics a correct run therefore has one test outside in about one run of nine with 10
members, and two or more in under 1 %. Hence the default ``max_outside`` = 1 and the
default of 10 members (the recipe's ten seeds). PD14 at scale 0.1 with every recurrent
weight 20 % too strong or too weak lies outside in 4 and 6 of 24 (docs/validation.md).
"""

from __future__ import annotations

import itertools
from pathlib import Path
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import ks_2samp

STATISTICS = ("rate_hz", "cv_isi", "correlation")
STATISTIC_LABELS = {"rate_hz": "firing rate (spikes/s)", "cv_isi": "ISI CV", "correlation": "spike-count correlation"}
BIN_MS = 2.0  # bins of the spike-count correlations (the recipe's 2 ms)
CORRELATION_SUBSAMPLE = 200  # active neurons per population for the correlations
MIN_SPIKES_FOR_CV = 3  # two intervals at least: a CV of one interval is always 0
SUBSAMPLE_SEED = 12345  # fixed, so that the statistics of a run file never change


@dataclass
class SpikeData:
    """One run's spikes per population in the analysed window (ms)."""

    populations: tuple[str, ...]
    num_neurons: np.ndarray  # neurons per population
    first_ids: np.ndarray  # id of each population's first neuron
    senders: dict  # population -> neuron ids of the spikes
    times_ms: dict  # population -> spike times (ms)
    t_start_ms: float
    t_stop_ms: float


def population_statistics(data: SpikeData) -> dict[str, dict[str, np.ndarray]]:
    """{population: {statistic: sample}} for one run (see the module docstring)."""
    import neo
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    from elephant.statistics import cv, isi

    duration_s = (data.t_stop_ms - data.t_start_ms) / 1000.0
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    out = {}
    for i, pop in enumerate(data.populations):
        n = int(data.num_neurons[i])
        senders = np.asarray(data.senders[pop], dtype=np.int64) - int(data.first_ids[i])
        times = np.asarray(data.times_ms[pop], dtype=float)
        keep = (times >= data.t_start_ms) & (times < data.t_stop_ms)  # [start, stop), as the 2 ms bins
        senders, times = senders[keep], times[keep]
        if senders.size and (senders.min() < 0 or senders.max() >= n):
            raise ValueError(f"{pop}: spike senders outside the population's {n} neurons")
        counts = np.bincount(senders, minlength=n)
        order = np.lexsort((times, senders))
        trains = np.split(times[order], np.cumsum(counts)[:-1])

        cvs = [cv(isi(t)) for t in trains if t.size >= MIN_SPIKES_FOR_CV]
        active = np.flatnonzero(counts > 0)
        chosen = np.sort(rng.choice(active, size=min(CORRELATION_SUBSAMPLE, active.size), replace=False))
        correlations = np.array([])
        if chosen.size >= 2:
            neo_trains = [neo.SpikeTrain(trains[j] * pq.ms, t_start=data.t_start_ms * pq.ms,
                                         t_stop=data.t_stop_ms * pq.ms) for j in chosen]
            binned = BinnedSpikeTrain(neo_trains, bin_size=BIN_MS * pq.ms)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a train in all bins has no variance: NaN, dropped
                matrix = correlation_coefficient(binned)
            correlations = matrix[np.triu_indices(chosen.size, k=1)]
            correlations = correlations[np.isfinite(correlations)]
        out[pop] = {"rate_hz": counts / duration_s, "cv_isi": np.asarray(cvs, dtype=float),
                    "correlation": np.asarray(correlations, dtype=float)}
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of two samples; NaN when either is empty (no data)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(ks_2samp(a, b).statistic)


def reference_spread(members: list[dict]) -> dict[tuple[str, str], np.ndarray]:
    """KS distances between all pairs of reference members, per (population, statistic)."""
    spread = {}
    for pop in members[0]:
        for stat in STATISTICS:
            spread[(pop, stat)] = np.array([ks_distance(a[pop][stat], b[pop][stat])
                                            for a, b in itertools.combinations(members, 2)])
    return spread


def compare(run: dict, members: list[dict], spread: dict) -> list[dict]:
    """Per (population, statistic): the run's mean KS distance to the members, the
    ensemble's largest pair distance, and whether the run lies inside."""
    rows = []
    for (pop, stat), pair_distances in spread.items():
        run_has = len(run[pop][stat]) > 0
        ref_has = sum(len(m[pop][stat]) > 0 for m in members)
        finite_pairs = pair_distances[np.isfinite(pair_distances)]
        row = {"population": pop, "statistic": stat, "distance": np.nan, "threshold": np.nan, "pair_median": np.nan}
        if finite_pairs.size:
            row.update(threshold=float(finite_pairs.max()), pair_median=float(np.median(finite_pairs)))
        if not run_has and not ref_has:
            # a population silent in the run and in the reference: nothing to compare
            rows.append({**row, "inside": True, "note": "no data in run or reference"})
        elif not run_has or not ref_has:
            # silent in the run but active in the reference, or the reverse: as far apart as KS goes
            rows.append({**row, "distance": 1.0, "inside": False, "note": "data in only one of run and reference"})
        elif not finite_pairs.size:
            rows.append({**row, "inside": False, "note": "data in only one reference member: no spread to compare with"})
        else:
            distances = np.array([ks_distance(run[pop][stat], m[pop][stat]) for m in members])
            distance = float(np.nanmean(distances))
            rows.append({**row, "distance": distance, "inside": bool(distance <= row["threshold"]), "note": ""})
    return rows


MAX_OUTSIDE = 1  # (population, statistic) pairs a valid run may have outside the spread


def verdict(rows: list[dict], max_outside: int = MAX_OUTSIDE) -> str:
    """'valid' (saying so when a pair lies outside, within the allowance), or 'invalid: ...'
    naming what lies outside the reference spread."""
    outside = [r for r in rows if not r["inside"]]
    if not outside:
        return "valid"
    if len(outside) <= max_outside:
        return f"valid ({len(outside)} of {len(rows)} outside the reference spread, {max_outside} allowed)"
    worst = sorted(outside, key=lambda r: -(r["distance"] - r["threshold"]))
    named = "; ".join(f"{r['population']} {r['statistic']} KS {r['distance']:.3f} > {r['threshold']:.3f}"
                      for r in worst[:4])
    more = f"; and {len(outside) - 4} more" if len(outside) > 4 else ""
    return f"invalid: {len(outside)} of {len(rows)} outside the reference spread: {named}{more}"


# ---------------------------------------------------------------- run files

def spike_data(run_file) -> SpikeData:
    """The spikes of one run record in its measured window (after the presimulation).
    Population sizes come from the model (spikescale.models.pd14.derived) at the run's scale."""
    import h5py

    from spikescale.models.pd14 import derived
    from spikescale.models.pd14 import params as P

    with h5py.File(run_file, "r") as fh:
        spec = dict(fh["spec"].attrs)
        if not bool(spec["record_spikes"]):
            raise ValueError(f"{run_file}: the run recorded no spikes (record_spikes is false)")
        senders = {pop: [] for pop in P.POPULATIONS}
        times = {pop: [] for pop in P.POPULATIONS}
        first_ids = None
        for rank_group in fh["ranks"].values():
            first_ids = rank_group["population_first_ids"][()]
            for pop, group in rank_group["spikes"].items():
                senders[pop].append(group["senders"][()])
                times[pop].append(group["times_ms"][()])
    network = derived.derive(float(spec["n_scaling"]), float(spec["k_scaling"]), str(spec["drive"]),
                             bool(spec["thalamic_input"]))
    t_start = float(spec["t_presim_ms"])
    return SpikeData(populations=P.POPULATIONS, num_neurons=network.num_neurons, first_ids=np.asarray(first_ids),
                     senders={p: np.concatenate(v) if v else np.array([], dtype=np.int64) for p, v in senders.items()},
                     times_ms={p: np.concatenate(v) if v else np.array([]) for p, v in times.items()},
                     t_start_ms=t_start, t_stop_ms=t_start + float(spec["t_sim_ms"]))


def _run_attrs(run_file) -> dict:
    import h5py

    with h5py.File(run_file, "r") as fh:
        return {"run_id": str(fh.attrs["run_id"]), "status": str(fh.attrs["status"]),
                "error": str(fh.attrs.get("error", "")), "seed": int(fh["spec"].attrs["seed"])}


def build_reference(run_files: list, out, key: str, min_members: int = 5) -> dict:
    """The ensemble file: every ok member's statistics and the pair distances. With fewer
    than ``min_members`` ok members it says it is unusable, and why."""
    import h5py

    members, ids, left_out = [], [], []
    for path in run_files:
        attrs = _run_attrs(path)
        if attrs["status"] != "ok":
            left_out.append(f"{attrs['run_id']}: {attrs['status']}: {attrs['error']}")
            continue
        members.append(population_statistics(spike_data(path)))
        ids.append(attrs["run_id"])
        print(f"reference {key}: statistics of {attrs['run_id']} ({len(ids)}/{len(run_files)})", flush=True)
    usable = len(members) >= min_members
    reason = "" if usable else f"only {len(members)} ok member(s), at least {min_members} needed"
    tmp = f"{out}.tmp"
    with h5py.File(tmp, "w") as fh:
        fh.attrs.update({"format": "spikescale-reference-ensemble", "key": key, "usable": usable,
                         "unusable_reason": reason, "members": ids, "left_out": left_out or [""]})
        for run_id, stats in zip(ids, members):
            for pop, values in stats.items():
                for stat, sample in values.items():
                    fh.create_dataset(f"members/{run_id}/{pop}/{stat}", data=sample, compression="gzip")
        if usable:
            for (pop, stat), distances in reference_spread(members).items():
                fh.create_dataset(f"spread/{pop}/{stat}", data=distances)
    Path(tmp).replace(out)
    return {"usable": usable, "reason": reason, "members": ids}


def load_reference(path) -> tuple[bool, str, list[str], list[dict], dict]:
    """(usable, reason, member ids, member statistics, pair distances) of an ensemble file."""
    import h5py

    with h5py.File(path, "r") as fh:
        usable, reason = bool(fh.attrs["usable"]), str(fh.attrs["unusable_reason"])
        ids = [str(i) for i in fh.attrs["members"]] if usable else []
        members = [{pop: {stat: g[stat][()] for stat in STATISTICS} for pop, g in fh[f"members/{i}"].items()}
                   for i in ids]
        spread = ({(pop, stat): g[stat][()] for pop, g in fh["spread"].items() for stat in STATISTICS}
                  if usable else {})
    return usable, reason, ids, members, spread


def check_run(run_file, reference_file, out_json, max_outside: int = MAX_OUTSIDE) -> dict:
    """Validate one run against the reference; write and return the result (JSON)."""
    import json

    attrs = _run_attrs(run_file)
    result = {"run_id": attrs["run_id"], "reference": str(reference_file), "rows": [], "population_means": {}}
    usable, reason, ids, members, spread = load_reference(reference_file)
    if attrs["status"] != "ok":
        result["verdict"] = f"not checked: the run {attrs['status']}"
    elif not usable:
        result["verdict"] = f"not checked: reference ensemble unusable ({reason})"
    else:
        stats = population_statistics(spike_data(run_file))
        result["rows"] = compare(stats, members, spread)
        result["verdict"] = verdict(result["rows"], max_outside)
        result["max_outside"] = max_outside
        result["reference_members"] = ids
        result["population_means"] = {pop: {stat: (float(np.mean(v)) if len(v) else None)
                                            for stat, v in values.items()} for pop, values in stats.items()}
    Path(out_json).write_text(json.dumps(result, indent=1, default=float))
    print(f"validation {attrs['run_id']}: {result['verdict']}")
    return result


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="PD14 validation against a NEST reference ensemble")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reference", help="statistics and pair distances of the reference ensemble")
    r.add_argument("--key", required=True)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("runs", nargs="+", type=Path)
    c = sub.add_parser("check", help="validate one run against the reference ensemble")
    c.add_argument("--run", required=True, type=Path)
    c.add_argument("--reference", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--max-outside", type=int, default=MAX_OUTSIDE,
                   help="(population, statistic) pairs a valid run may have outside the spread")
    args = parser.parse_args(argv)
    if args.command == "reference":
        build_reference(args.runs, args.out, args.key)
    else:
        check_run(args.run, args.reference, args.out, args.max_outside)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
