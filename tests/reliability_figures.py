"""Reliability figures: faults injected and runs lost; bad inputs tried and wrongly accepted.

    .venvs/workflow/bin/python tests/reliability_figures.py [--ledger .test-results/faults.jsonl]

`make test` runs it after pytest. The fault figures come from the ledger that the fault
tests write as they run (tests/test_faults.py, test_workflow.py, test_slurm.py: each fault
was injected for real, and a run counts as lost when the converged campaign lacks it or a
run file finished before the fault changed). The input figures are measured here: every
hostile configuration of tests/hostile_inputs.py is loaded as the workflow loads it, and
broken run files (truncated, random bytes, empty, not a run record) are collected as the
collect rule collects them. Exit status 1 when a run was lost, a bad input was accepted, or
no fault was recorded (the fault tests did not run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import h5py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from helpers import TINY_EXPERIMENT, TINY_MODEL, write_yaml  # noqa: E402
from hostile_inputs import CANARY, CASES  # noqa: E402


def hostile_configurations() -> tuple[int, list[str]]:
    """(tried, names of the accepted ones)."""
    from spikescale.config import load_campaign
    from spikescale.errors import ConfigError

    accepted = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            config_dir = Path(tmp) / f"c{i}" / "config"
            shutil.copytree(REPO / "config", config_dir)
            write_yaml(config_dir / "model" / "tiny.yaml", TINY_MODEL)
            write_yaml(config_dir / "experiment" / "tiny.yaml", TINY_EXPERIMENT)
            case.apply(config_dir)
            try:
                load_campaign("tiny", config_dir)
                accepted.append(case.name)
            except ConfigError as exc:
                if not any(p.file.endswith(case.file) and case.key in p.key for p in exc.problems):
                    accepted.append(f"{case.name} (rejected, but the error does not name {case.file}: {case.key})")
            if Path(CANARY).exists():
                accepted.append(f"{case.name} (EXECUTED a command)")
                Path(CANARY).unlink()
    return len(CASES), accepted


def broken_run_files() -> tuple[int, list[str]]:
    """(tried, names of the broken files that collect merged)."""
    import h5py

    from spikescale.store import collect

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        with h5py.File(runs / "not-a-record.h5", "w") as fh:
            fh.attrs["format"] = "something-else"
            fh.create_dataset("x", data=list(range(1000)))
        data = (runs / "not-a-record.h5").read_bytes()
        (runs / "truncated.h5").write_bytes(data[: len(data) // 2])
        (runs / "random-bytes.h5").write_bytes(os.urandom(4096))
        (runs / "empty.h5").write_bytes(b"")
        files = sorted(runs.glob("*.h5"))
        frame = collect(files, "figures", Path(tmp) / "campaign.h5", Path(tmp) / "runs.csv")
        return len(files), [str(r) for r in frame["run_id"]]


def foreign_run_files() -> tuple[int, list[str]]:
    """(tried, what went wrong): records that are complete but do not belong to the campaign's
    plan (another run's name, another campaign, a changed hash or spec, an unplanned run) must
    all be set aside, while the one good record beside them is merged."""
    from helpers import run_spec
    from spikescale import provenance
    from spikescale.record import update_attrs, write_record
    from spikescale.store import collect

    def record(spec, context=None):
        context = context or {"software": {"versions": {}}}
        return {"attrs": {"run_id": spec["run_id"], "campaign": spec["campaign"], "status": "ok", "error": "",
                          "error_type": "", "failed_phase": "", "started_at": "t0", "finished_at": "t1"},
                "spec": {"attrs": spec}, "summary": {"attrs": {"platform": "cpu", "emulated": False}},
                "provenance": {"attrs": {"config_sha256": provenance.config_sha256({"spec": spec, **context})},
                               "context": json.dumps(context, sort_keys=True)}}

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        specs = [{**run_spec(seed=seed), "campaign": "figures"} for seed in range(1, 7)]
        good, *others = specs
        for spec in specs:
            write_record(runs / f"{spec['run_id']}.h5", record(spec))
        shutil.copy(runs / f"{good['run_id']}.h5", runs / f"{others[0]['run_id']}.h5")  # under another's name
        update_attrs(runs / f"{others[1]['run_id']}.h5", {"campaign": "another"})  # root says another campaign
        with h5py.File(runs / f"{others[2]['run_id']}.h5", "r+") as fh:  # provenance changed after the run
            fh["provenance"].attrs["config_sha256"] = "0" * 64
        update_attrs(runs / f"{others[2]['run_id']}.h5", {})
        write_record(runs / f"{others[3]['run_id']}.h5", record({**others[3], "seed": 99}))  # spec not the plan's
        plan = {spec["run_id"]: {k: str(v) for k, v in spec.items()} for spec in specs[:-1]}  # others[4] unplanned
        frame = collect(sorted(runs.glob("*.h5")), "figures", Path(tmp) / "campaign.h5", Path(tmp) / "runs.csv",
                        plan=plan, set_aside_dir=Path(tmp) / "set_aside")
        merged = list(frame["run_id"])
        wrong = [f"foreign record merged: {run_id}" for run_id in merged if run_id != good["run_id"]]
        if good["run_id"] not in merged:
            wrong.append(f"a good record was refused: {good['run_id']}")
        return len(others), wrong


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=Path,
                        default=Path(os.environ.get("SPIKESCALE_FAULT_LEDGER", REPO / ".test-results" / "faults.jsonl")))
    args = parser.parse_args(argv)

    faults = []
    if args.ledger.exists():
        faults = [json.loads(line) for line in args.ledger.read_text().splitlines() if line.strip()]
    print("Faults injected (tests/test_faults.py, test_workflow.py, test_slurm.py), from", args.ledger)
    for f in faults:
        print(f"  {f['fault']:<80} runs expected {f['expected_runs']}, ok after rerun {f['ok_runs']}, "
              f"finished files changed {f['changed_finished_files']}, lost {f['runs_lost']}")
    lost = sum(f["runs_lost"] for f in faults)

    configs_tried, configs_accepted = hostile_configurations()
    files_tried, files_merged = broken_run_files()
    foreign_tried, foreign_wrong = foreign_run_files()
    files_tried += foreign_tried
    files_merged += foreign_wrong
    print("Bad inputs (tests/hostile_inputs.py; broken and foreign run files through collect)")
    for name in configs_accepted:
        print(f"  ACCEPTED configuration: {name}")
    for name in files_merged:
        print(f"  MERGED broken run file: {name}")

    print()
    print(f"faults injected:      {len(faults)}")
    print(f"runs lost:            {lost}")
    print(f"bad inputs tried:     {configs_tried + files_tried} ({configs_tried} configurations, {files_tried} run files)")
    print(f"bad inputs accepted:  {len(configs_accepted) + len(files_merged)}")
    if not faults:
        print("FAIL: no fault in the ledger: run the fault tests first (make test)")
        return 1
    if lost or configs_accepted or files_merged:
        print("FAIL")
        return 1
    print("PASS: nothing lost, nothing bad accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
