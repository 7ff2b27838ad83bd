"""Energy as SLURM accounts it: ConsumedEnergyRaw of a job step, from sacct (accounted).

Only on clusters with accounting (slurmdbd) and an energy plugin (AcctGatherEnergyType:
rapl, ipmi, pm_counters, gpu, ...). The figure covers a whole job step, so it is not
phase-resolved: it is reported beside the measured phases (energy_job_j), not as them.
sacct reports 0 where no plugin measured anything; that is recorded as unavailable with the
reason, never as zero joules. Queried once per campaign, on the login node, by collect.
"""

from __future__ import annotations

import shutil
import subprocess

SACCT_FIELDS = ("JobIDRaw", "State", "ElapsedRaw", "ConsumedEnergyRaw", "NNodes", "NodeList")


def parse_sacct(text: str) -> dict[str, dict]:
    """`sacct -n -P -o <SACCT_FIELDS>` output -> {JobIDRaw: row}; energy in joules or None."""
    rows = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, parts))
        energy = row["ConsumedEnergyRaw"].strip()
        row["energy_j"] = float(energy) if energy.replace(".", "", 1).isdigit() else None
        row["elapsed_s"] = int(row["ElapsedRaw"]) if row["ElapsedRaw"].isdigit() else None
        rows[row["JobIDRaw"]] = row
    return rows


def query_sacct(job_ids: list[str], env: dict | None = None) -> tuple[dict[str, dict], str]:
    """sacct's rows for these jobs and their steps, or ({}, why not)."""
    if not job_ids:
        return {}, ""
    if shutil.which("sacct", path=(env or {}).get("PATH")) is None:
        return {}, "sacct is not installed here"
    argv = ["sacct", "-n", "-P", "-j", ",".join(sorted(set(job_ids))), "-o", ",".join(SACCT_FIELDS)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return {}, f"sacct failed: {exc}"
    if proc.returncode != 0:
        return {}, f"sacct failed: {proc.stderr.strip()[:300]}"
    return parse_sacct(proc.stdout), ""


def step_energy(rows: dict[str, dict], job_id: str, step_id: str) -> tuple[float | None, str]:
    """(joules, source) of the run's job step (or, without a step id, of the whole job)."""
    key = f"{job_id}.{step_id}" if step_id not in ("", None) else str(job_id)
    row = rows.get(key)
    if row is None:
        return None, f"unavailable: sacct has no record of {key}"
    if not row["energy_j"]:
        return None, (f"unavailable: SLURM accounting reports no energy for {key} (ConsumedEnergyRaw "
                      f"{row['ConsumedEnergyRaw'] or 'empty'}: the cluster has no AcctGatherEnergyType plugin, "
                      "or its sensors measured nothing)")
    return row["energy_j"], f"accounted: sacct ConsumedEnergyRaw of {key} ({row['NNodes']} node(s), whole step)"


def accounted_energy(runs: list[dict], machine: dict | None, env: dict | None = None) -> list[tuple]:
    """(energy_job_j, energy_job_source) for each run (dicts with slurm_job_id and
    slurm_step_id), in order."""
    slurm_runs = [r for r in runs if r.get("slurm_job_id")]
    accounting = ((machine or {}).get("slurm") or {}).get("accounting", True)
    rows, why_not = ({}, "") if not (slurm_runs and accounting) else query_sacct(
        [str(r["slurm_job_id"]) for r in slurm_runs], env)
    out = []
    for run in runs:
        if not run.get("slurm_job_id"):
            out.append(("", "unavailable: not a SLURM job"))
        elif not accounting:
            out.append(("", "unavailable: the cluster has no SLURM accounting (machine file: slurm.accounting false)"))
        elif why_not:
            out.append(("", f"unavailable: {why_not}"))
        else:
            energy, source = step_energy(rows, str(run["slurm_job_id"]), str(run.get("slurm_step_id", "")))
            out.append(("" if energy is None else energy, source))
    return out
