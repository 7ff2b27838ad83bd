"""A campaign's submission-ready data point for the PD14 community table:
``python -m spikescale.analysis.submission results/<campaign> [--out community_entry.yaml]``.

One entry per backend, software variant, model and resource shape of the campaign's ok,
undisturbed performance runs, in the fields of the community's data file
(performance_data_raw.yaml in INM-6/microcircuit-PD14-model, spelled as its reader
docs/benchmarking/_scripts/visualize_performance.py spells them): simulator, num_nodes,
system, process_node_nm, rtf, esyn_muJ, drive, comment. RTF is the median over the runs,
with its spread beside it. Beside each entry: the caveats it must carry (scale, model time,
seeds, whether the energy is at the outlet, the validation verdict, whether the recipe is
met: spikescale.analysis.recipe) and the campaign's provenance (machine, software versions,
configuration hash, git commit, campaign name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml

from spikescale.analysis import recipe
from spikescale.analysis.scaling import is_disturbed, performance_runs

GROUP = ["backend", "variant", "n_scaling", "k_scaling", "drive", "nodes", "tasks_per_node", "threads_per_task"]
# the community file's simulator names (visualize_performance.py); ours where it has none
SIMULATORS = {("nest", "cpu"): "nest_cpu", ("nest", "gpu"): "nest_gpu", ("genn", "gpu"): "genn",
              ("spinnaker", "spinnaker"): "spinnaker"}
VERSION_COLUMNS = ("nest_version", "brian2_version", "pygenn_version", "spynnaker_version")
DRIVES = {"dc": "DC", "poisson": "Poisson"}


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str)


def _joined(values) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v))


def _number(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(f"{value:.6g}")


def energy_of(runs: pd.DataFrame) -> dict:
    """E_syn of a group's runs: at the outlet where every run has it, else the metered
    figure labelled as not at the outlet, else unavailable with the reason. runs.csv from
    before outlet energy has no esyn_outlet_uj column: then the metered figure is used."""
    outlet = pd.to_numeric(runs["esyn_outlet_uj"], errors="coerce") if "esyn_outlet_uj" in runs else None
    outlet_source = _joined(_text(runs, "energy_outlet_source"))
    if outlet is not None and len(runs) and outlet.notna().all():
        return {"esyn_muJ": _number(outlet.median()), "at_outlet": True,
                "energy": f"at the power outlet ({outlet_source or 'declarations not recorded'})"}
    why_not_outlet = (f"outlet: {outlet_source}" if outlet_source else
                      "outlet: no esyn_outlet_uj in runs.csv (collected before outlet energy was recorded)"
                      if outlet is None else "outlet: no reason recorded")
    metered = pd.to_numeric(runs["esyn_uj"], errors="coerce") if "esyn_uj" in runs else pd.Series(dtype=float)
    if len(runs) and len(metered) and metered.notna().all():
        kind = _joined(_text(runs, "energy_kind")) or "measured"
        return {"esyn_muJ": _number(metered.median()), "at_outlet": False,
                "energy": f"{kind}, not at the outlet ({_joined(_text(runs, 'energy_source'))}); {why_not_outlet}"}
    unavailable = _joined(_text(runs, "energy_unavailable")) or _joined(_text(runs, "energy_source"))
    return {"esyn_muJ": None, "at_outlet": False,
            "energy": f"unavailable: {unavailable or 'no reason recorded'}; {why_not_outlet}"}


def _validation(runs: pd.DataFrame, group: dict) -> str:
    """The verdicts of the group's validation runs (same backend, variant and model)."""
    same = pd.Series(True, index=runs.index)
    for key in ("backend", "variant", "n_scaling", "k_scaling", "drive"):
        if key in runs:
            same &= _text(runs, key) == str(group[key] if group[key] == group[key] else "")
    checked = runs[same & recipe._bool(runs["record_spikes"])]
    if checked.empty:
        return "not validated: no validation run of this backend and model (no validation block)"
    verdicts = _text(checked, "validation")
    valid = verdicts.str.startswith("valid")
    return f"{int(valid.sum())} of {len(checked)} validation run(s) valid" + (
        f"; {_joined(verdicts[~valid]) or 'no verdict recorded'}" if not valid.all() else "")


def _system(folder: Path, runs: pd.DataFrame, machine: dict) -> str:
    """The CPU model the runs recorded (their provenance), with the machine's name."""
    cpu = ""
    for run_id in runs["run_id"]:
        path = folder / "runs" / f"{run_id}.h5"
        if path.is_file():
            with h5py.File(path, "r") as fh:
                cpu = str(fh["provenance"].attrs.get("cpu_model", "")) if "provenance" in fh else ""
            break
    name = machine.get("name") or _joined(_text(runs, "machine"))
    return f"{cpu or 'CPU model not recorded'} (machine {name})"


def provenance_of(folder: Path, runs: pd.DataFrame, config: dict | None) -> dict:
    config_hash = None
    h5 = folder / "campaign.h5"
    if h5.is_file():
        with h5py.File(h5, "r") as fh:
            config_hash = fh.attrs.get("config_sha256")
    versions = {c.removesuffix("_version"): _joined(_text(runs, c)) for c in VERSION_COLUMNS if _joined(_text(runs, c))}
    return {"campaign": _joined(_text(runs, "campaign")), "machine": _joined(_text(runs, "machine")),
            "software": versions, "variant": _joined(_text(runs, "variant")),
            "config_sha256": str(config_hash) if config_hash else "not recorded (no campaign.h5)",
            "config_files": (config or {}).get("files", {}),
            "git_commit": _joined(_text(runs, "git_commit")) or "not recorded",
            "git_dirty": _joined(_text(runs, "git_dirty")) or "not recorded",
            "hosts": _joined(_text(runs, "host"))}


def entries(folder: str | Path) -> dict:
    """The submission: source, recipe verdict and one entry (with caveats and provenance) per group."""
    folder = Path(folder)
    campaign = recipe.read_campaign(folder / "runs.csv")
    points = recipe.check(campaign)
    lacking = [f"{p.point} ({p.reason})" for p in points if p.status == recipe.NOT_MET]
    recipe_verdict = "met" if not lacking else "not met: " + "; ".join(lacking)
    recipe_short = "met" if not lacking else "not met (" + ", ".join(p.point for p in points
                                                                      if p.status == recipe.NOT_MET) + ")"
    runs = campaign.runs
    machine = (campaign.config or {}).get("machine") or {}
    process_node = machine.get("process_node_nm", "not declared")
    ok = performance_runs(runs)
    ok = ok[(ok["status"] == "ok") & ~is_disturbed(ok)].copy()
    ok["variant"] = _text(ok, "variant")
    out = []
    for key, group in ok.groupby(GROUP, sort=True, dropna=False):
        g = dict(zip(GROUP, key, strict=True))
        rtf = pd.to_numeric(group["rtf"], errors="coerce").dropna()
        platform = _joined(_text(group, "platform")) or "cpu"
        energy = energy_of(group)
        drive = DRIVES.get(str(g["drive"]).lower(), str(g["drive"]))
        full = float(g["n_scaling"]) == 1 and float(g["k_scaling"]) == 1
        seeds = int(group["seed"].nunique())
        t_model = recipe._values(group["t_sim_s"])
        caveats = {
            "scale": "full scale" if full else f"NOT full scale: n_scaling {float(g['n_scaling']):g}, "
                                               f"k_scaling {float(g['k_scaling']):g} (not comparable with the table)",
            "model_time_s": t_model, "seeds": seeds,
            "energy_at_outlet": energy["at_outlet"], "energy": energy["energy"],
            "validation": _validation(runs, g), "recipe": recipe_verdict,
        }
        comment = (f"spikescale campaign {campaign.name}; {g['nodes']}x{g['tasks_per_node']}x{g['threads_per_task']} "
                   f"(nodes x ranks x threads); median of {len(rtf)} run(s), {seeds} seed(s), {t_model} s model "
                   f"time; {caveats['scale']}; E_syn {energy['energy']}; recipe {recipe_short}")
        out.append({
            "entry": {"simulator": SIMULATORS.get((str(g["backend"]), platform), str(g["backend"])),
                      "num_nodes": int(g["nodes"]), "system": _system(folder, group, machine),
                      "process_node_nm": process_node, "rtf": _number(rtf.median()) if len(rtf) else None,
                      "esyn_muJ": energy["esyn_muJ"], "drive": drive, "comment": comment},
            "rtf_spread": {"min": _number(rtf.min()), "max": _number(rtf.max()), "n_runs": len(rtf)},
            "caveats": caveats,
            "provenance": provenance_of(folder, group, campaign.config),
        })
    return {"campaign": campaign.name,
            "fields": "those of performance_data_raw.yaml (INM-6/microcircuit-PD14-model), as its reader "
                      "visualize_performance.py names them",
            "recipe": recipe_verdict, "entries": out,
            "note": "" if out else "no ok, undisturbed performance runs: nothing to submit"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaign", type=Path, help="results/<campaign> (runs.csv, campaign.h5, config_resolved.json)")
    parser.add_argument("--out", type=Path, help="write the YAML here (default: print it only)")
    args = parser.parse_args(argv)
    if not (args.campaign / "runs.csv").is_file():
        print(f"submission: {args.campaign / 'runs.csv'} does not exist (collect the campaign first)", file=sys.stderr)
        return 2
    text = yaml.safe_dump(json.loads(json.dumps(entries(args.campaign), default=str)), sort_keys=False,
                          allow_unicode=True, width=100)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
