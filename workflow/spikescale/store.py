"""The campaign store: merge run files into campaign.h5 and runs.csv.

``python -m spikescale.store collect`` is what the workflow's collect rule runs. Reading
them back is spikescale.load's (``load_runs``, ``load_phases``, ``load_kernel_timers``,
``load_spikes``), re-exported here: the analysis imports spikescale.load, which needs none of
the run side (merging asks SLURM's accounting, spikescale.energy.accounting).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from spikescale.columns import FROM_SUMMARY, NAMES
from spikescale.energy.accounting import accounted_energy
from spikescale.energy.outlet import COLUMNS as OUTLET_COLUMNS, outlet_energies
from spikescale.load import load_kernel_timers, load_phases, load_runs, load_spikes  # noqa: F401 - the API
from spikescale import index as results_index, provenance
from spikescale.plan import Run
from spikescale.record import RecordError, summary_of_open

# One row per run, in the order spikescale.columns declares (meaning, unit and source of each
# there). Empty where a figure does not apply (yet), never a guess.
RUNS_CSV_COLUMNS = NAMES


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _blank(value):
    return "" if value is None else value


# Columns read from the record by key (summary_json's "<group>.<name>"), as text; empty when
# the record has no such entry (a run off SLURM, a package the backend does not use).
_TEXT_FROM_RECORD = {
    "host": "provenance.host", "git_commit": "provenance.git_commit", "git_dirty": "provenance.git_dirty",
    "failed_phase": "failed_phase", "slurm_job_id": "provenance/slurm.SLURM_JOB_ID",
    "nest_version": "provenance/packages.nest-simulator", "brian2_version": "provenance/packages.brian2",
    "pygenn_version": "provenance/packages.pygenn",
    "nest_detailed_timers": "provenance/packages.nest_detailed_timers",  # a bool where NEST ran
    "spynnaker_version": "provenance/packages.sPyNNaker", "slurm_array_job_id": "allocation.slurm_array_job_id",
    "slurm_array_task_id": "allocation.slurm_array_task_id", "slurm_step_id": "allocation.slurm_step_id",
    "nodes_used": "allocation.nodes_used", "gpus_per_node": "allocation.gpus_per_node",
}
# Columns copied as they are from the planned run (/spec).
_FROM_SPEC = ("backend", "model", "n_scaling", "k_scaling", "drive", "seed", "repetition", "nodes", "tasks_per_node",
              "threads_per_task", "machine", "record_spikes", "dt_ms", "thalamic_input")


def row_from_summary(s: dict, path: Path) -> dict:
    """One runs.csv row from a run file's root, spec, summary, provenance and allocation
    attributes (spikescale.columns says where each column comes from)."""
    row = {name: s[f"spec.{name}"] for name in _FROM_SPEC}
    row.update({name: s[name] for name in ("run_id", "campaign", "status", "error", "started_at", "finished_at")})
    row.update({name: s.get(key, "") for name, key in _TEXT_FROM_RECORD.items()})
    for name in ("slurm_job_id", "nest_version", "brian2_version", "pygenn_version", "spynnaker_version",
                 "slurm_array_job_id", "slurm_array_task_id", "slurm_step_id", "nodes_used"):
        row[name] = str(row[name])
    row.update({
        "t_model_s": s["spec.t_sim_ms"] / 1000.0, "t_presim_model_s": s["spec.t_presim_ms"] / 1000.0,
        "virtual_processes": s["spec.nodes"] * s["spec.tasks_per_node"] * s["spec.threads_per_task"],
        "weight_factor": float(s.get("spec.weight_factor", 1.0)),
        "variant": s.get("spec.variant", ""),  # a single-software campaign's: filled in by _collect
        "validation": "",  # collect fills it in (validation_verdicts)
        "file_sha256": file_sha256(path),
    })
    for name in FROM_SUMMARY:
        row[name] = _blank(s.get(f"summary.{name}"))
    return row


def _write_columns(group: h5py.Group, frame: pd.DataFrame) -> None:
    for column in frame.columns:
        values = frame[column]
        numeric = pd.to_numeric(values, errors="coerce")
        if values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            group.create_dataset(column, data=values.astype(bool).to_numpy())
        elif numeric.notna().sum() == (values != "").sum() and (values != "").any():
            group.create_dataset(column, data=numeric.to_numpy(dtype=float))  # empty -> NaN
        else:
            group.create_dataset(column, data=values.astype(str).to_numpy(dtype=object), dtype=h5py.string_dtype())


def validation_verdicts(validation_dir: Path | None, rows: list[dict]) -> list[str]:
    """runs.csv's validation column: the verdict of analysis/validation.py for runs that
    recorded spikes, otherwise why the run was not checked."""
    out = []
    for row in rows:
        check = validation_dir / f"{row['run_id']}.json" if validation_dir else None
        if check is not None and check.is_file():
            out.append(json.loads(check.read_text())["verdict"])
        elif not row["record_spikes"]:
            out.append("not checked: performance run (no spikes recorded)")
        elif validation_dir is None:
            out.append("not checked: the experiment has no validation section")
        else:
            out.append(f"not checked: no result in {check}")
    return out


def read_plan(path: Path) -> dict[str, dict[str, str]]:
    """plan.csv as text, by run id: what collect compares each record's /spec with."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["run_id"]: row for row in csv.DictReader(fh)}


# A planned run's fields that a spec leaves out while they have their default: Run's own.
_SPEC_DEFAULTS = dict((f.name, f.default) for f in dataclasses.fields(Run) if f.default is not dataclasses.MISSING)


def admission_problem(s: dict, src: h5py.File, path: Path, campaign: str,
                      plan: dict[str, dict[str, str]] | None) -> str | None:
    """Why a readable run file does not belong to the campaign (None when it does): its name
    is its run id, that run is planned, its /spec is the plan's row, and its campaign and
    configuration hash agree in every place the record states them."""
    run_id = s.get("run_id")
    if path.stem != run_id or s.get("spec.run_id") != run_id:
        return f"its name says run {path.stem!r}, its record says run {run_id!r} (spec: {s.get('spec.run_id')!r})"
    for where in ("campaign", "spec.campaign"):
        if s.get(where) != campaign:
            return f"its {where} is {s.get(where)!r}, not campaign {campaign!r}"
    if plan is not None:
        if run_id not in plan:
            return f"run {run_id!r} is not in the plan of campaign {campaign!r}"
        # plan.csv leaves a field empty where the spec leaves it out: its default
        expected = {key: planned or str(_SPEC_DEFAULTS.get(key, "")) for key, planned in plan[run_id].items()}
        differ = [f"{key} {s.get(f'spec.{key}', _SPEC_DEFAULTS.get(key))!r} (plan: {planned!r})"
                  for key, planned in expected.items()
                  if str(s.get(f"spec.{key}", _SPEC_DEFAULTS.get(key))) != planned]
        if differ:
            return "its specification differs from the plan: " + "; ".join(differ[:5])
    spec = {key.removeprefix("spec."): value for key, value in s.items() if key.startswith("spec.")}
    try:
        context = json.loads(src["provenance/context"][()])
    except (KeyError, TypeError, ValueError):
        return "its record has no readable provenance/context"
    if s.get("provenance.config_sha256") != provenance.config_sha256({"spec": spec, **context}):
        return "its configuration hash does not match its own specification and context (changed after the run)"
    return None


def _set_aside(path: Path, set_aside_dir: Path | None) -> str:
    """Move a file out of runs/ (so that the next snakemake runs the run again); never overwrite."""
    if set_aside_dir is None or not path.exists():
        return ""
    set_aside_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = set_aside_dir / f"{path.name}.{stamp}"
    os.replace(path, target)
    return f" (moved to {target})"


def collect(run_files: list[Path], campaign: str, campaign_h5: Path, runs_csv: Path,
            resolved_config: dict | None = None, validation_dir: Path | None = None,
            plan: dict[str, dict[str, str]] | None = None, set_aside_dir: Path | None = None,
            index_db: Path | None = None) -> pd.DataFrame:
    """Merge run files into campaign.h5 (summary table + a copy of every record) and
    runs.csv. A file is admitted only if it is a complete record of a run of this campaign's
    plan (admission_problem); any other is set aside with the reason, moved to set_aside_dir
    when given (the next snakemake then runs that run again), and never merged. Writes both
    outputs atomically and leaves no temporary file; running it twice gives the same content.
    Then, when index_db is given (the workflow's collect gives <results_dir>/index.sqlite),
    replaces the campaign's rows in that results index with runs.csv's (spikescale.index)."""
    tmp_h5 = campaign_h5.with_name(campaign_h5.name + ".tmp")
    campaign_h5.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame = _collect(run_files, campaign, campaign_h5, runs_csv, resolved_config, validation_dir, plan,
                         set_aside_dir, tmp_h5)
    finally:
        tmp_h5.unlink(missing_ok=True)
        runs_csv.with_name(runs_csv.name + ".tmp").unlink(missing_ok=True)
    if index_db is not None:
        n = results_index.register(runs_csv, index_db)
        print(f"collect: {n} run(s) of {runs_csv.parent} registered in the results index {index_db}")
    return frame


def _judge_disturbance(rows: list[dict], resolved_config: dict | None) -> None:
    """`disturbed` by the machine file's threshold as it is now, from the share each run
    measured. The threshold is not part of a run's context: changing it re-judges the runs
    at the next collect instead of simulating them again (the run's own /summary keeps the
    verdict by the threshold it was started with, disturbance_max_other_cpu_share)."""
    from spikescale.disturbance import is_disturbed

    machine = (resolved_config or {}).get("machine") or {}
    max_share = (machine.get("disturbance") or {}).get("max_other_cpu_share")
    if max_share is None:
        return  # a configuration from before disturbance was measured: the runs' own verdicts
    for row in rows:
        share = row.get("cpu_other_share")
        if share is not None and share != "":
            row["disturbed"] = is_disturbed(float(share), float(max_share))


def _machine_file(resolved_config: dict | None) -> str:
    """The machine file's name as the experiment names it (<name>.yaml), for the reasons."""
    name = ((resolved_config or {}).get("experiment") or {}).get("machine")
    return f"{name}.yaml" if name else ""


def _single_software(resolved_config: dict | None) -> str:
    """The name of a campaign's one software file (empty when it names several, or unknown)."""
    software = ((resolved_config or {}).get("experiment") or {}).get("software")
    return software if isinstance(software, str) else ""


def _collect(run_files, campaign, campaign_h5, runs_csv, resolved_config, validation_dir, plan, set_aside_dir,
             tmp_h5) -> pd.DataFrame:
    rows, rejected = [], []
    with h5py.File(tmp_h5, "w") as out:
        runs_group = out.create_group("runs")
        # Each run file is opened once: its summary read, then the whole record, root
        # attributes included, copied in one HDF5 copy (tests/benchmarks/campaign_10k.py).
        for path in sorted(map(Path, run_files)):
            run_id = None
            try:
                with h5py.File(path, "r") as src:
                    summary = summary_of_open(src, path)
                    problem = admission_problem(summary, src, path, campaign, plan)
                    if problem:
                        raise RecordError(problem)
                    row = row_from_summary(summary, path)
                    run_id = row["run_id"]
                    src.copy(src, runs_group, name=run_id)
                runs_group[run_id].attrs["file_sha256"] = row["file_sha256"]
            except Exception as exc:  # noqa: BLE001 - one file never stops the merge of the others
                if run_id is not None and run_id in runs_group:
                    del runs_group[run_id]  # never a partial copy
                reason = (str(exc) if str(exc).startswith(str(path)) else
                          f"{path}: unreadable HDF5 file ({exc})" if isinstance(exc, OSError) else f"{path}: {exc}")
                reason += _set_aside(path, set_aside_dir)
                rejected.append((str(path), reason))
                print(f"collect: set aside {reason}", file=sys.stderr)
                continue
            rows.append(row)

        for row, verdict in zip(rows, validation_verdicts(validation_dir, rows)):
            row["validation"] = verdict
        for row in rows:  # a campaign of one software file: its runs' variant is that file
            row["variant"] = row["variant"] or _single_software(resolved_config)
        _judge_disturbance(rows, resolved_config)
        machine = (resolved_config or {}).get("machine")
        for row, (energy_j, source) in zip(rows, accounted_energy(rows, machine)):
            row["energy_job_j"], row["energy_job_source"] = energy_j, source
        # the machine file's energy.outlet as it is now: a corrected declaration re-collects, never re-runs
        for row, outlet in zip(rows, outlet_energies(rows, machine, _machine_file(resolved_config))):
            row.update(zip(OUTLET_COLUMNS, outlet))
        frame = pd.DataFrame(rows, columns=list(RUNS_CSV_COLUMNS))
        sort_keys = ["backend", "variant", "n_scaling", "nodes", "tasks_per_node", "threads_per_task", "seed", "repetition"]
        frame = frame.sort_values(sort_keys, kind="stable").reset_index(drop=True)

        out.attrs["format"] = "spikescale-campaign"
        out.attrs["format_version"] = 1
        out.attrs["campaign"] = campaign
        out.attrs["n_runs"] = len(frame)
        out.attrs["n_failed"] = int((frame["status"] != "ok").sum())
        out.attrs["rejected_files"] = json.dumps(rejected)
        if resolved_config is not None:
            out.attrs["config_sha256"] = hashlib.sha256(
                json.dumps(resolved_config, sort_keys=True, default=str).encode()).hexdigest()
            out.create_dataset("config_resolved", data=json.dumps(resolved_config, sort_keys=True, default=str),
                               dtype=h5py.string_dtype())
        _write_columns(out.create_group("summary"), frame.fillna(""))
    tmp_h5.replace(campaign_h5)

    runs_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp_csv = runs_csv.with_name(runs_csv.name + ".tmp")
    frame.to_csv(tmp_csv, index=False, quoting=csv.QUOTE_MINIMAL)
    tmp_csv.replace(runs_csv)

    failed = frame[frame["status"] != "ok"]
    print(f"collect: {len(frame)} run(s) in {campaign_h5}, {len(failed)} failed, {len(rejected)} set aside")
    for _, row in failed.iterrows():
        print(f"collect: FAILED {row['run_id']} in phase {row['failed_phase'] or '?'}: {row['error']}")
    return frame


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="spikescale campaign store")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="merge run files into campaign.h5 and runs.csv")
    c.add_argument("--campaign", required=True)
    c.add_argument("--plan", required=True, type=Path, help="plan.csv: which runs belong to the campaign")
    c.add_argument("--runs-dir", required=True, type=Path)
    c.add_argument("--config", type=Path, help="resolved campaign configuration (JSON) to store")
    c.add_argument("--out-h5", required=True, type=Path)
    c.add_argument("--out-csv", required=True, type=Path)
    c.add_argument("--validation-dir", type=Path, help="results of analysis.validation check, <run_id>.json")
    c.add_argument("--set-aside-dir", type=Path, help="where files that are not admitted go (default: beside "
                   "--runs-dir, set_aside/)")
    c.add_argument("--index", type=Path, help="the results index to register the campaign in (default: "
                   f"{results_index.INDEX_NAME} in the folder above the campaign folder, i.e. the results folder)")
    c.add_argument("--no-index", action="store_true", help="do not register the campaign in a results index")
    args = parser.parse_args(argv)
    plan = read_plan(args.plan)
    files = [args.runs_dir / f"{run_id}.h5" for run_id in plan]
    resolved = json.loads(args.config.read_text()) if args.config else None
    set_aside = args.set_aside_dir or args.runs_dir.parent / "set_aside"
    index_db = None if args.no_index else args.index or results_index.index_path(args.out_h5.resolve().parent.parent)
    try:
        collect(files, args.campaign, args.out_h5, args.out_csv, resolved, args.validation_dir, plan, set_aside,
                index_db)
    except results_index.ResultsIndexError as exc:
        print(f"collect: campaign.h5 and runs.csv are written, but the results index was not updated: {exc}",
              file=sys.stderr)
        return 1
    return 0


def completion_line(campaign: str, results: Path, planned_ids: list[str]) -> str:
    """What the workflow says when it ends (_completeness_line), then, on a line of its own,
    the disturbed runs of runs.csv by name (spikescale.disturbance), if any."""
    from spikescale.disturbance import disturbed_line  # only here: the rest of store needs none of it

    line = _completeness_line(campaign, results, planned_ids)
    disturbed = disturbed_line(results / "runs.csv")
    return f"{line}\n{disturbed}" if disturbed else line


def _completeness_line(campaign: str, results: Path, planned_ids: list[str]) -> str:
    """What the workflow says when it ends: how many planned runs have a record in the
    campaign store, how many failed, how many files were set aside; never "complete" when
    a planned run has no admitted record."""
    present = [run_id for run_id in planned_ids if (results / "runs" / f"{run_id}.h5").exists()]
    store = results / "campaign.h5"
    collected = failed = 0
    rejected: list = []
    if store.exists():
        with h5py.File(store, "r") as fh:
            collected, failed = int(fh.attrs["n_runs"]), int(fh.attrs["n_failed"])
            rejected = json.loads(fh.attrs["rejected_files"])
    planned = len(planned_ids)
    if len(present) == planned and collected == planned and not rejected:
        return (f"spikescale: campaign {campaign!r} is complete: {planned} planned runs, all collected in {results}/ "
                f"({failed} failed: runs.csv says why)" if failed else
                f"spikescale: campaign {campaign!r} is complete: {planned} planned runs, all collected in {results}/")
    line = (f"spikescale: campaign {campaign!r} is NOT complete: {len(present)} of {planned} planned runs have a "
            f"record, {collected} are in {store.name if store.exists() else 'no campaign.h5 yet'} ({failed} failed)")
    if rejected:
        line += f"; {len(rejected)} file(s) set aside: " + "; ".join(reason for _, reason in rejected[:3])
    return line + ". Run snakemake again to run what is missing."


if __name__ == "__main__":
    sys.exit(main())
