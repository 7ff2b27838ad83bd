"""Strong-scaling metrics from a campaign's run table.

For each backend and model size, runs are grouped by resource shape (nodes, tasks per
node, threads per task). Per shape: mean, sample standard deviation and count over seeds
and repetitions of every phase time and of the real-time factor. Speedup and parallel
efficiency are taken against the shape with the fewest virtual processes:

    speedup(p)    = mean t_sim(base) / t_sim(p)      (per run, then mean and sd)
    efficiency(p) = speedup(p) / (VP(p) / VP(base))

Disturbed runs (runs.csv's `disturbed`: other processes took a share of their CPUs,
docs/running.md#disturbed-runs) are left out of every mean and sd by default: `n_runs`
counts the runs averaged, `n_runs_disturbed` those left out, and `rtf_disturbed`,
`t_sim_s_disturbed` list their own values (';'-separated) for the figures to mark. A point
whose runs are all disturbed stays in the table with NaN means and n_runs 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spikescale import phases

SHAPE = ["nodes", "tasks_per_node", "threads_per_task"]
MODEL = ["backend", "n_scaling", "k_scaling", "drive"]
# What the tables give mean and sd of, per shape: the wall time of every phase the figures
# stack (spikescale.phases.STACKED), network construction (t_construct_s, create + connect)
# right after its two phases, and the real-time factor. compile and load are Brian2's and
# SpiNNaker's phases; their columns are empty for NEST.
METRICS = [*(phases.column(name) for name in phases.CONSTRUCTION), "t_construct_s",
           *(phases.column(name) for name in phases.STACKED if name not in phases.CONSTRUCTION), "rtf"]


def shape_label(nodes: int, tasks: int, threads: int) -> str:
    """nodes x tasks per node x threads per task, e.g. '1x1x2'."""
    return f"{int(nodes)}x{int(tasks)}x{int(threads)}"


def performance_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that measure speed: those that record no spikes (validation runs record
    them, which costs time), unless every run records spikes."""
    recording = runs["record_spikes"].astype(str).str.lower() == "true" if "record_spikes" in runs else None
    if recording is None or recording.all():
        return runs
    return runs[~recording]


def series_backend(runs: pd.DataFrame) -> pd.Series:
    """The backend as the tables and figures name a series: '<backend> [<variant>]' when the
    runs come from several software variants (docs/configuration.md#software-variants), so
    that each variant is a series of its own; the plain backend otherwise."""
    backend = runs["backend"].astype(str)
    if "variant" not in runs:
        return backend
    variant = runs["variant"].astype(object).fillna("").astype(str)
    if variant[variant != ""].nunique() <= 1:
        return backend
    return backend.where(variant == "", backend + " [" + variant + "]")


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The successful performance runs, backend named per series (series_backend)."""
    ok = performance_runs(runs)
    ok = ok[ok["status"] == "ok"].copy()
    ok["backend"] = series_backend(ok)
    ok["virtual_processes"] = ok["nodes"] * ok["tasks_per_node"] * ok["threads_per_task"]
    for col in METRICS:
        ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else np.nan  # older runs.csv: no t_compile_s
    return ok


def is_emulated(runs: pd.DataFrame) -> pd.Series:
    """True where a run's `emulated` column says so; False where the column or value is missing."""
    if "emulated" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["emulated"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))


def scaling_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """ok_runs for the scaling tables and figures: an emulated platform's runs form a series of
    their own, named '<backend> (emulated)' (their times are the emulator's on this host)."""
    ok = ok_runs(runs)
    emulated = is_emulated(ok)
    ok.loc[emulated, "backend"] = ok.loc[emulated, "backend"].astype(str) + " (emulated)"
    return ok


def is_disturbed(runs: pd.DataFrame) -> pd.Series:
    """True where a run's `disturbed` column says so; False where the column or value is
    missing (not measured: runs.csv from before the measurement, or a run that failed early)."""
    if "disturbed" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["disturbed"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))


DISTURBED_LISTED = ("rtf", "t_sim_s")  # the disturbed runs' own values, listed per point
DISTURBED_COLUMNS = ["n_runs_disturbed", *(f"{m}_disturbed" for m in DISTURBED_LISTED)]


def averaged(group: pd.DataFrame, include_disturbed: bool) -> pd.DataFrame:
    """The runs of a point that go into its means: all, or (the default) the undisturbed."""
    return group if include_disturbed else group[~is_disturbed(group)]


def add_disturbed(row: dict, group: pd.DataFrame, listed: tuple[str, ...] = DISTURBED_LISTED) -> None:
    """row[n_runs_disturbed] and the disturbed runs' values of each `listed` metric, in the
    same run order for every metric ('nan' where a run has none), '' when no run is disturbed."""
    disturbed = group[is_disturbed(group)]
    row["n_runs_disturbed"] = len(disturbed)
    for m in listed:
        values = pd.to_numeric(disturbed[m], errors="coerce") if m in disturbed else [np.nan] * len(disturbed)
        row[f"{m}_disturbed"] = ";".join(f"{v:.6g}" for v in values)


def disturbed_values(cell) -> list[float]:
    """A '<m>_disturbed' cell back as numbers: '' or NaN (after a CSV round trip) is none; a
    lone value may come back from CSV as a number."""
    if isinstance(cell, str):
        return [float(v) for v in cell.split(";") if v.strip()]
    return [] if cell is None or np.isnan(cell) else [float(cell)]


def add_mean_sd(row: dict, name: str, values: pd.Series) -> None:
    """row[name_mean], row[name_sd]: mean and sample sd (NaN for a single value)."""
    row[f"{name}_mean"] = values.mean()
    row[f"{name}_sd"] = values.std(ddof=1) if len(values) > 1 else np.nan


def _base(model_runs: pd.DataFrame, include_disturbed: bool = False) -> tuple[int, float]:
    """The reference point of a scaling series: the fewest virtual processes, and the mean
    simulation time there (NaN when every run there is disturbed and left out)."""
    base_vp = model_runs["virtual_processes"].min()
    used = averaged(model_runs, include_disturbed)
    return base_vp, used.loc[used["virtual_processes"] == base_vp, "t_sim_s"].mean()


def _table(columns: list[str], rows: list[dict], include_disturbed: bool) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["disturbed_in_means"] = include_disturbed  # for the figures' notes
    return table


def strong_scaling_table(runs: pd.DataFrame, include_disturbed: bool = False) -> pd.DataFrame:
    """One row per backend, model size and resource shape, ordered by virtual processes."""
    ok = scaling_runs(runs)
    columns = MODEL + SHAPE + ["virtual_processes", "n_runs"]
    for m in METRICS + ["speedup", "efficiency"]:
        columns += [f"{m}_mean", f"{m}_sd"]
    columns += DISTURBED_COLUMNS
    if ok.empty:
        return _table(columns, [], include_disturbed)

    rows = []
    for model_key, model_runs in ok.groupby(MODEL, sort=True):
        base_vp, base_t_sim = _base(model_runs, include_disturbed)
        for shape_key, all_shape_runs in model_runs.groupby(SHAPE, sort=True):
            shape_runs = averaged(all_shape_runs, include_disturbed)
            vp = int(all_shape_runs["virtual_processes"].iloc[0])
            row = dict(zip(MODEL, model_key, strict=True)) | dict(zip(SHAPE, shape_key, strict=True))
            row["virtual_processes"] = vp
            row["n_runs"] = len(shape_runs)
            add_disturbed(row, all_shape_runs)
            for m in METRICS:
                add_mean_sd(row, m, shape_runs[m])
            speedup = base_t_sim / shape_runs["t_sim_s"]
            add_mean_sd(row, "speedup", speedup)
            add_mean_sd(row, "efficiency", speedup / (vp / base_vp))
            rows.append(row)
    table = _table(columns, rows, include_disturbed)
    return table.sort_values(MODEL + ["virtual_processes"] + SHAPE, kind="stable").reset_index(drop=True)


WEAK_MODEL = ["backend", "k_scaling", "drive"]  # n_scaling grows with the resources


def weak_scaling_table(runs: pd.DataFrame, include_disturbed: bool = False) -> pd.DataFrame:
    """One row per backend (and K scaling, drive) and resource shape, the model growing with
    the resources. Weak-scaling efficiency against the shape with the fewest virtual
    processes, per run, then mean and sd:

        efficiency(p) = mean t_sim(base) / t_sim(p)      (ideal: 1, the time stays flat)

    The mean firing rate is kept beside each point: PD14's in-degree follows K_scaling only,
    so a larger network gives each neuron as many inputs but shares fewer of them with its
    neighbours; correlations, and with them rates and the work per simulated second, differ
    between the points of a weak-scaling series."""
    ok = scaling_runs(runs)
    for col in ("n_neurons", "n_synapses", "rate_mean_hz"):
        ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else np.nan
    columns = WEAK_MODEL + SHAPE + ["virtual_processes", "n_scaling", "n_neurons", "n_synapses", "n_runs",
                                    "rate_mean_hz_mean"]
    for m in METRICS + ["weak_efficiency"]:
        columns += [f"{m}_mean", f"{m}_sd"]
    columns += DISTURBED_COLUMNS
    if ok.empty:
        return _table(columns, [], include_disturbed)
    rows = []
    for model_key, model_runs in ok.groupby(WEAK_MODEL, sort=True):
        _, base_t_sim = _base(model_runs, include_disturbed)
        for shape_key, all_shape_runs in model_runs.groupby(SHAPE, sort=True):
            shape_runs = averaged(all_shape_runs, include_disturbed)
            row = dict(zip(WEAK_MODEL, model_key, strict=True)) | dict(zip(SHAPE, shape_key, strict=True))
            row["virtual_processes"] = int(all_shape_runs["virtual_processes"].iloc[0])
            row["n_scaling"] = float(all_shape_runs["n_scaling"].iloc[0])
            row["n_neurons"] = all_shape_runs["n_neurons"].mean()  # the model's, disturbed or not
            row["n_synapses"] = all_shape_runs["n_synapses"].mean()
            row["n_runs"] = len(shape_runs)
            add_disturbed(row, all_shape_runs)
            row["rate_mean_hz_mean"] = shape_runs["rate_mean_hz"].mean()
            for m in METRICS:
                add_mean_sd(row, m, shape_runs[m])
            add_mean_sd(row, "weak_efficiency", base_t_sim / shape_runs["t_sim_s"])
            rows.append(row)
    return _table(columns, rows, include_disturbed).sort_values(WEAK_MODEL + ["virtual_processes"]).reset_index(
        drop=True)
