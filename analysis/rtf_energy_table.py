"""The table of the RTF / E_syn figure (spikescale.analysis.rtf_energy, which draws it with
spikescale.analysis.rtf_energy_plot).

One row per backend, platform, model size, drive, resource shape and energy kind: mean and
sample standard deviation over seeds and repetitions of the real-time factor and of the
energy per synaptic event (E_syn, microjoules; simulation phase), and beside it E_syn at the
power outlet (esyn_outlet_uj: the metered part plus the machine file's declarations, labelled
by energy_outlet_source; docs/energy.md). Runs of different energy
kinds (measured, accounted, modelled) are never averaged together; runs whose energy is
unavailable form rows of their own, with the reason, so that their speed is still shown.
A run is emulated when its `emulated` column is true (a platform emulated in software; a
missing column or an empty value counts as not emulated). An emulated run's point is the
platform's, not the emulator's: its modelled real-time factor (`rtf_modelled`, the board's
time_scale_factor) beside its modelled energy; `rtf_kind` says which RTF a row shows.
Disturbed runs are left out of the means by default, as in spikescale.analysis.scaling:
`n_runs_disturbed` counts them, `rtf_disturbed` and `esyn_uj_disturbed` list their own
values, run by run. A modelled RTF (an emulated board's) does not depend on the host's load,
so there a disturbed run counts as any other.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from spikescale.analysis.scaling import (SHAPE, add_disturbed, add_mean_sd, averaged, is_disturbed, is_emulated,
                                         ok_runs, shape_label)

SERIES = ["backend", "platform", "emulated", "n_scaling", "k_scaling", "drive", "energy_kind", "rtf_kind"]
GROUP = SERIES + SHAPE
TEXT_COLUMNS = ("platform", "energy_kind", "energy_source", "energy_unavailable", "energy_outlet_source")
COLUMNS = GROUP + ["shape", "virtual_processes", "full_scale", "n_runs", "rtf_mean", "rtf_sd", "n_runs_esyn",
                   "esyn_uj_mean", "esyn_uj_sd", "n_runs_esyn_outlet", "esyn_outlet_uj_mean", "esyn_outlet_uj_sd",
                   "energy_source", "energy_outlet_source", "energy_unavailable", "energy_unavailable_short",
                   "n_runs_disturbed", "rtf_disturbed", "esyn_uj_disturbed"]
DISTURBED_LISTED = ("rtf", "esyn_uj")


def short_reason(unavailable: str) -> str:
    """'rapl: no powercap interface (/sys/... does not exist); nvml: NVML could not start
    (...): no NVIDIA driver' -> 'rapl: no powercap interface; nvml: NVML could not start':
    each source with the head of its reason, without parentheses and paths."""
    out = []
    for item in (part.strip() for part in str(unavailable).split(";")):
        if not item:
            continue
        source, _, reason = item.partition(": ")
        head = re.split(r" \(|: ", reason, maxsplit=1)[0]
        head = " ".join(word for word in head.split() if "/" not in word)
        out.append(f"{source}: {head}" if head else source)
    return "; ".join(dict.fromkeys(out)) or "no reason recorded"


def _joined(values: pd.Series) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v))


def rtf_energy_table(runs: pd.DataFrame, include_disturbed: bool = False) -> pd.DataFrame:
    """Our points of the RTF / E_syn figure: one row per GROUP, successful runs only; disturbed
    runs out of the means unless include_disturbed."""
    ok = ok_runs(runs)
    ok["emulated"] = is_emulated(ok)
    modelled = pd.to_numeric(ok["rtf_modelled"], errors="coerce") if "rtf_modelled" in ok else pd.Series(np.nan, index=ok.index)
    use_modelled = ok["emulated"] & modelled.notna()
    ok["rtf"] = pd.to_numeric(ok["rtf"], errors="coerce").where(~use_modelled, modelled)
    ok["rtf_kind"] = np.where(use_modelled, "modelled", "measured")
    ok["disturbed"] = is_disturbed(ok) & ~use_modelled  # the host's load cannot change a modelled point
    for col in ("esyn_uj", "esyn_outlet_uj"):  # the outlet's: runs.csv from before it was collected has none
        ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else np.nan
    for col in TEXT_COLUMNS:
        ok[col] = ok[col].astype(object).fillna("").astype(str) if col in ok else ""  # all empty: read as NaN
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for key, all_runs in ok.groupby(GROUP, sort=True):
        group = averaged(all_runs, include_disturbed)
        row = dict(zip(GROUP, key, strict=True))
        row["shape"] = shape_label(row["nodes"], row["tasks_per_node"], row["threads_per_task"])
        row["virtual_processes"] = int(all_runs["virtual_processes"].iloc[0])
        row["full_scale"] = bool(row["n_scaling"] == 1 and row["k_scaling"] == 1)
        row["n_runs"] = len(group)
        add_mean_sd(row, "rtf", group["rtf"])
        esyn = group["esyn_uj"].dropna()
        row["n_runs_esyn"] = len(esyn)
        add_mean_sd(row, "esyn_uj", esyn)
        outlet = group["esyn_outlet_uj"].dropna()
        row["n_runs_esyn_outlet"] = len(outlet)
        add_mean_sd(row, "esyn_outlet_uj", outlet)
        row["energy_source"] = _joined(all_runs["energy_source"])
        row["energy_outlet_source"] = _joined(all_runs["energy_outlet_source"])
        row["energy_unavailable"] = _joined(all_runs["energy_unavailable"])
        row["energy_unavailable_short"] = short_reason(row["energy_unavailable"]) if row["energy_unavailable"] else ""
        add_disturbed(row, all_runs, DISTURBED_LISTED)
        rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["disturbed_in_means"] = include_disturbed  # for the figure's note
    order = ["backend", "platform", "n_scaling", "k_scaling", "drive", "virtual_processes"] + SHAPE + ["energy_kind"]
    return table.sort_values(order, kind="stable").reset_index(drop=True)
