"""The PD14 community's benchmarking recipe as a check: which of its points a campaign meets.

``python -m spikescale.analysis.recipe results/<campaign>`` (or a plan.csv / runs.csv path)
prints one line per recipe point: met, not met or not checkable, with the values found and
the reason. It works on a plan alone (results/<campaign>/plan.csv, before any run: what the
configuration promises) and on a collected campaign (runs.csv: what the runs did). The
resolved configuration beside it (config_resolved.json, the plan rule writes it) adds the
reference ensemble's seeds and the machine's outlet declarations where present.

The recipe (INM-6/microcircuit-PD14-model, docs/benchmarking; Senk et al. 2026): state the
drive; optimised initial conditions; discard the first 500 ms; at least 10 s of model time
for performance; ten realisations (seeds); no spike recording in performance runs; accuracy
from rates, ISI CVs and spike-count correlations against reference data; RTF and energy
per synaptic event including everything needed to run at the power outlet; full scale.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from spikescale.analysis.scaling import is_disturbed, performance_runs

MET, NOT_MET, NOT_CHECKABLE = "met", "not met", "not checkable"
WARMUP_S = 0.5
MODEL_TIME_S = 10.0
SEEDS = 10
# Where the model draws its initial membrane potentials: normal per population, the
# recipe's "optimised" initial conditions, in every builder (nothing configures it).
INITIAL_CONDITIONS_AT = ("models/pd14/params.py V0_MEAN_MV, V0_STD_MV; models/pd14/nest_builder.py "
                         "(nest.random.normal), models/pd14/connectivity.py initial_potentials_mV (Brian2, GeNN, "
                         "SpiNNaker builders)")


@dataclass(frozen=True)
class Point:
    point: str  # short name
    recipe: str  # what the recipe asks
    status: str  # met, not met, not checkable
    found: str  # the values found
    reason: str  # why that status


@dataclass(frozen=True)
class Campaign:
    """What the check reads: the runs (planned or collected), whether they are results,
    and the resolved configuration where it was found."""

    name: str
    runs: pd.DataFrame  # normalised: t_sim_s, t_presim_s, record_spikes (bool)
    collected: bool  # runs.csv (True) or plan.csv (False)
    config: dict | None
    source: Path


def _bool(values: pd.Series) -> pd.Series:
    return values.map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))


def read_campaign(path: str | Path) -> Campaign:
    """A campaign folder (runs.csv if collected, else plan.csv), or a runs.csv / plan.csv."""
    path = Path(path)
    if path.is_dir():
        folder = path
        path = next((folder / n for n in ("runs.csv", "plan.csv") if (folder / n).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{folder}: neither runs.csv nor plan.csv (plan the campaign first: "
                                    "make recipe EXPERIMENT=<name> plans it)")
    frame = pd.read_csv(path)
    collected = "t_model_s" in frame.columns
    need = ("t_model_s", "t_presim_model_s") if collected else ("t_sim_ms", "t_presim_ms")
    missing = [c for c in (*need, "n_scaling", "k_scaling", "drive", "seed", "record_spikes") if c not in frame]
    if missing:
        raise ValueError(f"{path}: not a plan.csv or runs.csv of a campaign: no column(s) {', '.join(missing)}")
    runs = frame.copy()
    if collected:
        runs["t_sim_s"] = pd.to_numeric(runs["t_model_s"], errors="coerce")
        runs["t_presim_s"] = pd.to_numeric(runs["t_presim_model_s"], errors="coerce")
    else:
        runs["t_sim_s"] = pd.to_numeric(runs["t_sim_ms"], errors="coerce") / 1000
        runs["t_presim_s"] = pd.to_numeric(runs["t_presim_ms"], errors="coerce") / 1000
    runs["record_spikes"] = _bool(runs["record_spikes"])
    config_file = path.parent / "config_resolved.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else None
    name = str(runs["campaign"].iloc[0]) if "campaign" in runs and len(runs) else path.parent.name
    return Campaign(name, runs, collected, config, path)


def _values(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(set(values)))


def _drive(c: Campaign) -> Point:
    recipe = "state the drive (DC or Poisson)"
    drives = sorted(set(c.runs["drive"].astype(str).str.lower()))
    if drives and set(drives) <= {"dc", "poisson"}:
        return Point("drive", recipe, MET, f"drive {', '.join(drives)}", "every run records its drive (runs.csv drive)")
    return Point("drive", recipe, NOT_MET, f"drive {', '.join(drives) or 'none'}", "a run without DC or Poisson drive")


def _initial_conditions(c: Campaign) -> Point:
    return Point("initial_conditions", "optimised initial conditions", MET, "normal per population",
                 f"by construction: every backend draws them ({INITIAL_CONDITIONS_AT})")


def _warmup(perf: pd.DataFrame) -> Point:
    recipe = f"discard the first {WARMUP_S * 1000:g} ms"
    low = perf["t_presim_s"].min()
    found = f"presimulation {_values(perf['t_presim_s'] * 1000)} ms"
    if low >= WARMUP_S:
        return Point("warmup", recipe, MET, found, "the presimulation is discarded from every measured figure")
    return Point("warmup", recipe, NOT_MET, found, f"{low * 1000:g} ms < {WARMUP_S * 1000:g} ms required (t_presim_ms)")


def _model_time(perf: pd.DataFrame) -> Point:
    recipe = f"at least {MODEL_TIME_S:g} s of model time for performance"
    low = perf["t_sim_s"].min()
    found = f"model time {_values(perf['t_sim_s'])} s"
    if low >= MODEL_TIME_S:
        return Point("model_time", recipe, MET, found, f"{low:g} s >= {MODEL_TIME_S:g} s")
    return Point("model_time", recipe, NOT_MET, found,
                 f"model time: {low:g} s < {MODEL_TIME_S:g} s required (t_sim_ms)")


def _groups(frame: pd.DataFrame) -> list[str]:
    return [c for c in ("backend", "variant", "nodes", "tasks_per_node", "threads_per_task") if c in frame]


def _seeds(c: Campaign, perf: pd.DataFrame) -> Point:
    recipe = f"{SEEDS} realisations (seeds) per configuration"
    runs = _ok_perf(c, perf) if c.collected else perf
    what = "ok, undisturbed runs" if c.collected else "planned"
    if runs.empty:
        return Point("seeds", recipe, NOT_MET, "0 seeds", f"no {what} performance runs")
    counts = runs.groupby(_groups(runs), dropna=False)["seed"].nunique()
    low = int(counts.min())
    found = f"{low} seed(s) ({what}, fewest of {len(counts)} backend x shape group(s))"
    if low >= SEEDS:
        return Point("seeds", recipe, MET, found, f"{low} >= {SEEDS}")
    return Point("seeds", recipe, NOT_MET, found, f"seeds: {low} < {SEEDS}")


def _no_spikes(c: Campaign) -> Point:
    recipe = "no spike recording in performance runs"
    recording = c.runs["record_spikes"]
    if recording.all():
        return Point("no_spike_recording", recipe, NOT_MET, f"{len(recording)} of {len(recording)} runs record spikes",
                     "spikes recorded in performance runs (the model sets record_spikes: true)")
    return Point("no_spike_recording", recipe, MET, f"{int((~recording).sum())} performance run(s) record none",
                 f"{int(recording.sum())} validation run(s) record spikes apart from them")


def _reference_seeds(c: Campaign) -> tuple[int | None, str]:
    validation = ((c.config or {}).get("experiment") or {}).get("validation")
    if validation is None:
        return None, "reference seeds unknown (no config_resolved.json beside the runs)"
    seeds = validation.get("reference_seeds") or []
    return len(seeds), f"reference ensemble of {len(seeds)} NEST seeds"


def _accuracy(c: Campaign) -> Point:
    recipe = "accuracy: firing rates, ISI CVs, spike-count correlations against reference data"
    validated = c.runs[c.runs["record_spikes"]]
    n_ref, ref_text = _reference_seeds(c)
    if validated.empty:
        return Point("accuracy", recipe, NOT_MET, "no validation runs",
                     "no run records spikes: the experiment has no validation block (docs/validation.md)")
    if n_ref is not None and n_ref < SEEDS:
        return Point("accuracy", recipe, NOT_MET, ref_text, f"reference seeds: {n_ref} < {SEEDS}")
    if not c.collected:
        return Point("accuracy", recipe, MET, f"{len(validated)} validation run(s) planned; {ref_text}",
                     "rates, ISI CVs and correlations against the NEST reference ensemble (docs/validation.md)")
    verdicts = validated["validation"].astype(object).fillna("").astype(str) if "validation" in validated else \
        pd.Series("", index=validated.index)
    valid = verdicts.str.startswith("valid")
    invalid = verdicts.str.startswith("invalid")
    found = f"{int(valid.sum())} of {len(validated)} validation run(s) valid; {ref_text}"
    if valid.all():
        return Point("accuracy", recipe, MET, found, "every validation run lies within the reference spread")
    if invalid.any():
        first = verdicts[invalid].iloc[0]
        return Point("accuracy", recipe, NOT_MET, found, f"{int(invalid.sum())} invalid, e.g. {first}")
    first = next((v for v in verdicts[~valid] if v), "no verdict recorded")
    return Point("accuracy", recipe, NOT_MET, found, f"{int((~valid).sum())} not judged valid: {first}")


def _ok_perf(c: Campaign, perf: pd.DataFrame) -> pd.DataFrame:
    """The runs whose figures count: ok and undisturbed (as in the figures' means)."""
    return perf[(perf["status"] == "ok") & ~is_disturbed(perf)] if c.collected else perf.iloc[0:0]


def _rtf(c: Campaign, perf: pd.DataFrame) -> Point:
    recipe = "real-time factor of the simulation phase"
    if not c.collected:
        return Point("rtf", recipe, NOT_CHECKABLE, "plan only", "measured by the runs (runs.csv rtf)")
    ok = _ok_perf(c, perf)
    rtf = pd.to_numeric(ok["rtf"], errors="coerce").dropna() if "rtf" in ok else pd.Series(dtype=float)
    if rtf.empty:
        return Point("rtf", recipe, NOT_MET, "no RTF", "no successful performance run")
    return Point("rtf", recipe, MET, f"RTF {rtf.min():.3g} to {rtf.max():.3g} over {len(rtf)} ok, undisturbed run(s)",
                 "measured, simulation phase")


def _outlet_declared(c: Campaign) -> str:
    machine = (c.config or {}).get("machine") or {}
    outlet = (machine.get("energy") or {}).get("outlet")
    if c.config is None:
        return "machine unknown (no config_resolved.json)"
    if outlet:
        return f"machine {machine.get('name')!r} declares its outlet terms (source: {outlet.get('source', '?')})"
    return f"machine {machine.get('name')!r} declares no energy.outlet block"


def _energy_outlet(c: Campaign, perf: pd.DataFrame) -> Point:
    recipe = "energy per synaptic event including everything needed to run, at the power outlet"
    declared = _outlet_declared(c)
    if not c.collected:
        return Point("energy_outlet", recipe, NOT_CHECKABLE, "plan only",
                     f"known only after the runs; {declared}")
    ok = _ok_perf(c, perf)
    if "esyn_outlet_uj" not in ok:
        return Point("energy_outlet", recipe, NOT_MET, "no esyn_outlet_uj column",
                     "energy at the outlet: unavailable (runs.csv collected before outlet energy was recorded)")
    esyn = pd.to_numeric(ok["esyn_outlet_uj"], errors="coerce")
    if len(ok) and esyn.notna().all():
        return Point("energy_outlet", recipe, MET, f"E_syn at the outlet {esyn.min():.3g} to {esyn.max():.3g} uJ "
                     f"over {len(ok)} ok, undisturbed run(s)", declared)
    sources = ok["energy_outlet_source"].astype(object).fillna("").astype(str) if "energy_outlet_source" in ok else \
        pd.Series("", index=ok.index)
    reasons = "; ".join(dict.fromkeys(s for s in sources[esyn.isna()] if s)) or "no reason recorded"
    return Point("energy_outlet", recipe, NOT_MET,
                 f"{int(esyn.notna().sum())} of {len(ok)} ok, undisturbed run(s) have it",
                 f"energy at the outlet: {reasons}")


def _full_scale(perf: pd.DataFrame) -> Point:
    recipe = "full scale (N_scaling = K_scaling = 1)"
    n, k = pd.to_numeric(perf["n_scaling"]), pd.to_numeric(perf["k_scaling"])
    found = f"n_scaling {_values(n)}, k_scaling {_values(k)}"
    if (n == 1).all() and (k == 1).all():
        return Point("full_scale", recipe, MET, found, "N_scaling = K_scaling = 1")
    return Point("full_scale", recipe, NOT_MET, found, f"scale: {found}, recipe needs 1.0")


def check(c: Campaign) -> list[Point]:
    """Every recipe point for the campaign, in the recipe's order."""
    perf = performance_runs(c.runs)
    return [_drive(c), _initial_conditions(c), _warmup(perf), _model_time(perf), _seeds(c, perf), _no_spikes(c),
            _accuracy(c), _rtf(c, perf), _energy_outlet(c, perf), _full_scale(perf)]


def recipe_table(points: list[Point]) -> pd.DataFrame:
    return pd.DataFrame([asdict(p) for p in points], columns=list(Point.__dataclass_fields__))


def recipe_text(c: Campaign, points: list[Point]) -> str:
    what = "collected runs (runs.csv)" if c.collected else "plan only (plan.csv), before any run"
    lines = [f"PD14 community recipe: campaign {c.name}, {what}", f"  from {c.source}"]
    width = max(len(p.status) for p in points)
    for p in points:
        lines.append(f"  [{p.status:<{width}}] {p.point}: {p.found} -- {p.reason}")
    lacking = [p.point for p in points if p.status == NOT_MET]
    lines.append(f"not met: {', '.join(lacking)}" if lacking else "not met: nothing")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="results/<campaign>, or its plan.csv or runs.csv")
    parser.add_argument("--csv", type=Path, help="write the table here")
    parser.add_argument("--txt", type=Path, help="write the text here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a point is not met")
    args = parser.parse_args(argv)
    try:
        campaign = read_campaign(args.source)
    except (OSError, ValueError) as exc:
        print(f"recipe: {exc}", file=sys.stderr)
        return 2
    points = check(campaign)
    text = recipe_text(campaign, points)
    for out, write in ((args.csv, lambda p: recipe_table(points).to_csv(p, index=False)),
                       (args.txt, lambda p: p.write_text(text, encoding="utf-8"))):
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            write(out)
    print(text, end="")
    return 1 if args.strict and any(p.status == NOT_MET for p in points) else 0


if __name__ == "__main__":
    sys.exit(main())
