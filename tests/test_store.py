"""collect: run files (written by the real harness) into campaign.h5 and runs.csv, and the
loaders that give them back as DataFrames."""

import json
import shutil

import h5py
import pandas as pd
import pytest

from helpers import run_harness, run_spec
from spikescale.models.pd14 import derived
from spikescale.store import (RUNS_CSV_COLUMNS, collect, load_kernel_timers, load_phases, load_runs, load_spikes,
                              read_plan)

REQUIRED_COLUMNS = (
    "run_id campaign backend platform emulated model n_scaling k_scaling drive t_model_s seed repetition nodes "
    "tasks_per_node threads_per_task status error t_create_s t_connect_s t_construct_s t_presim_s t_sim_s rtf "
    "n_neurons n_synapses n_spikes synaptic_events mem_peak_mb_max energy_sim_j energy_source esyn_uj validation "
    "host slurm_job_id started_at git_commit").split()


@pytest.fixture(scope="module")
def run_dir(nest_python, tmp_path_factory):
    """Three real run files of campaign 'test': two ok (one with spikes), one failed."""
    runs = tmp_path_factory.mktemp("campaign") / "runs"
    specs = [run_spec(seed=1, record_spikes=True), run_spec(seed=2, threads_per_task=2), run_spec(seed=3)]
    contexts = [{}, {}, {"software": {"versions": {"nest-simulator": "0.0"}}}]
    for spec, context in zip(specs, contexts, strict=True):
        assert run_harness(spec, runs / f"{spec['run_id']}.h5", context).returncode == 0
    return runs, specs


@pytest.mark.needs_nest
def test_collect_writes_one_row_per_run(run_dir, tmp_path):
    runs, specs = run_dir
    frame = collect(sorted(runs.glob("*.h5")), "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    csv = pd.read_csv(tmp_path / "runs.csv")
    assert list(csv.columns[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    assert len(csv) == 3 and set(csv["run_id"]) == {s["run_id"] for s in specs}
    ok, failed = csv[csv["status"] == "ok"], csv[csv["status"] == "failed"]
    assert len(ok) == 2 and len(failed) == 1
    assert (ok["rtf"] > 0).all()
    assert (ok["n_synapses"] == derived.derive(0.02, 0.02, "poisson").n_synapses).all()
    assert failed["error"].iloc[0].startswith("RuntimeError: software versions differ")
    assert failed["t_sim_s"].isna().all()  # empty, not zero
    assert (csv["platform"] == "cpu").all() and (~csv["emulated"]).all()
    assert (csv["energy_source"].str.startswith("unavailable:")).all()
    expected = csv["record_spikes"].map({True: "not checked: the experiment has no validation section",
                                          False: "not checked: performance run (no spikes recorded)"})
    assert (csv["validation"] == expected).all() and csv["record_spikes"].nunique() == 2
    assert (csv["t_model_s"] == 0.2).all()
    assert csv["file_sha256"].str.len().eq(64).all()
    assert len(frame) == 3


@pytest.mark.needs_nest
def test_campaign_h5_layout_with_plain_h5py(run_dir, tmp_path):
    runs, specs = run_dir
    collect(sorted(runs.glob("*.h5")), "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    with h5py.File(tmp_path / "campaign.h5") as fh:
        assert fh.attrs["format"] == "spikescale-campaign"
        assert fh.attrs["n_runs"] == 3 and fh.attrs["n_failed"] == 1
        assert fh["summary/t_sim_s"].shape == (3,)
        run_id = specs[0]["run_id"]
        assert fh[f"runs/{run_id}"].attrs["status"] == "ok"
        assert fh[f"runs/{run_id}/ranks/0/phases/simulate"].attrs["wall_s"] > 0
        assert fh[f"runs/{run_id}/ranks/0/spikes/L4E/times_ms"].ndim == 1


@pytest.mark.needs_nest
def test_loaders_return_dataframes(run_dir, tmp_path):
    runs, specs = run_dir
    collect(sorted(runs.glob("*.h5")), "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    from_h5, from_csv = load_runs(tmp_path / "campaign.h5"), load_runs(tmp_path / "runs.csv")
    assert list(from_h5["run_id"]) == list(from_csv["run_id"])
    pd.testing.assert_series_equal(from_h5["t_sim_s"], from_csv["t_sim_s"], check_names=False)
    phases = load_phases(tmp_path / "campaign.h5")
    ok_phases = phases[phases["run_id"] == specs[0]["run_id"]]
    assert list(ok_phases["phase"]) == ["setup", "create", "connect", "presimulate", "simulate", "collect"]
    timers = load_kernel_timers(tmp_path / "campaign.h5")
    sim = timers[(timers["run_id"] == specs[1]["run_id"]) & (timers["phase"] == "simulate")]
    assert set(sim[sim["timer"] == "time_communicate_prepare"]["thread"]) == {0, 1}
    spikes = load_spikes(tmp_path / "campaign.h5", specs[0]["run_id"])
    assert set(spikes.columns) == {"population", "sender", "time_ms"} and len(spikes) > 0
    assert load_spikes(tmp_path / "campaign.h5", specs[1]["run_id"]).empty
    # a single run file reads the same way
    assert len(load_spikes(runs / f"{specs[0]['run_id']}.h5", specs[0]["run_id"])) == len(spikes)


@pytest.mark.needs_nest
def test_collect_is_idempotent(run_dir, tmp_path):
    runs, _ = run_dir
    files = sorted(runs.glob("*.h5"))
    collect(files, "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    first = (tmp_path / "runs.csv").read_bytes()
    before = load_runs(tmp_path / "campaign.h5")
    collect(files, "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    assert (tmp_path / "runs.csv").read_bytes() == first
    pd.testing.assert_frame_equal(load_runs(tmp_path / "campaign.h5"), before)


@pytest.mark.needs_nest
def test_corrupt_and_foreign_files_are_set_aside(run_dir, tmp_path, capsys):
    runs, specs = run_dir
    work = tmp_path / "runs"
    shutil.copytree(runs, work)
    victim = work / f"{specs[1]['run_id']}.h5"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # truncated, as by a full disk
    frame = collect(sorted(work.glob("*.h5")), "test", tmp_path / "campaign.h5", tmp_path / "runs.csv")
    assert specs[1]["run_id"] not in set(frame["run_id"]) and len(frame) == 2
    assert str(victim) in capsys.readouterr().err
    frame = collect(sorted(runs.glob("*.h5")), "other", tmp_path / "c2.h5", tmp_path / "r2.csv")
    assert frame.empty  # runs of campaign 'test' are never merged into 'other'


def test_column_list_is_the_documented_one():
    assert list(RUNS_CSV_COLUMNS[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS


def _plan_csv(specs, path):
    """plan.csv as the plan rule writes it (spikescale.plan.write_plan_csv) for these specs."""
    import csv

    from spikescale.plan import Run

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(Run.__dataclass_fields__))
        writer.writeheader()
        for spec in specs:
            writer.writerow(spec)
    return path


def _merge(work, plan, tmp_path):
    from spikescale.store import main

    out = tmp_path / "out"
    assert main(["collect", "--campaign", "test", "--plan", str(plan), "--runs-dir", str(work),
                 "--out-h5", str(out / "campaign.h5"), "--out-csv", str(out / "runs.csv")]) == 0
    assert not list(out.glob("*.tmp*")), "collect left a temporary file"
    return pd.read_csv(out / "runs.csv"), out


@pytest.mark.needs_nest
def test_only_records_of_the_plan_are_admitted_the_others_moved_aside(run_dir, tmp_path, capsys):
    """Issue 18: a file under another run's name, a record whose campaign or configuration
    hash was changed, a run that is not planned and a damaged file are each set aside with the
    reason and moved out of runs/ (so that the next snakemake redoes the planned run); the
    rest is merged, and collect neither crashes nor leaves a temporary file."""
    from spikescale.record import update_attrs

    runs, specs = run_dir
    work = tmp_path / "runs"
    shutil.copytree(runs, work)
    ok1, ok2, failed = (work / f"{s['run_id']}.h5" for s in specs)
    extra = run_spec(seed=9)  # a planned run, whose file is a copy of another run's
    shutil.copy(ok1, work / f"{extra['run_id']}.h5")
    plan = _plan_csv([*specs, extra], tmp_path / "plan.csv")
    # the planned run seed 2: its provenance changed after the run
    with h5py.File(ok2, "r+") as fh:
        fh["provenance"].attrs["config_sha256"] = "0" * 64
    update_attrs(ok2, {})  # the record's JSON summary follows the change, as any honest edit would
    # the failed run: its root says another campaign than its spec
    update_attrs(failed, {"campaign": "other"})
    frame, out = _merge(work, plan, tmp_path)
    err = capsys.readouterr().err
    assert list(frame["run_id"]) == [specs[0]["run_id"]]
    assert f"its name says run {extra['run_id']!r}, its record says run {specs[0]['run_id']!r}" in err
    assert "configuration hash does not match" in err and "its campaign is 'other'" in err
    assert sorted(p.name for p in work.glob("*.h5")) == [ok1.name]  # the others moved away ...
    assert len(list((tmp_path / "set_aside").glob("*.h5.*"))) == 3  # ... to set_aside/, never deleted
    with h5py.File(out / "campaign.h5") as fh:
        assert len(json.loads(fh.attrs["rejected_files"])) == 3

    # a damaged file of a planned run; a record of a run that is not in the plan
    shutil.copytree(runs, work, dirs_exist_ok=True)
    plan = _plan_csv([specs[0], specs[1]], tmp_path / "plan.csv")
    data = (work / f"{specs[1]['run_id']}.h5").read_bytes()
    (work / f"{specs[1]['run_id']}.h5").write_bytes(data[: len(data) // 3])
    frame, _ = _merge(work, plan, tmp_path)
    err = capsys.readouterr().err
    assert list(frame["run_id"]) == [specs[0]["run_id"]] and "unreadable HDF5 file" in err
    assert not (work / f"{specs[1]['run_id']}.h5").exists()
    frame = collect([work / f"{specs[2]['run_id']}.h5"], "test", tmp_path / "c.h5", tmp_path / "r.csv",
                    plan=read_plan(plan))
    assert frame.empty and f"run {specs[2]['run_id']!r} is not in the plan" in capsys.readouterr().err


@pytest.mark.needs_nest
def test_the_closing_line_says_how_complete_the_campaign_is(run_dir, tmp_path):
    from spikescale.store import completion_line

    runs, specs = run_dir
    results = tmp_path / "test"
    shutil.copytree(runs, results / "runs")
    ids = [s["run_id"] for s in specs]
    assert "NOT complete: 3 of 3 planned runs have a record, 0 are in no campaign.h5 yet" in completion_line(
        "test", results, ids)
    collect(sorted((results / "runs").glob("*.h5")), "test", results / "campaign.h5", results / "runs.csv")
    assert "is complete: 3 planned runs, all collected" in completion_line("test", results, ids)
    assert "(1 failed: runs.csv says why)" in completion_line("test", results, ids)
    assert "NOT complete: 3 of 4 planned runs" in completion_line("test", results, [*ids, "nest-x"])


@pytest.mark.needs_nest
def test_collect_judges_disturbance_by_the_machine_file_as_it_is_now(run_dir, tmp_path):
    """The threshold is not part of a run's context (no re-run when it changes): collect
    judges each run's measured share against the resolved machine file's threshold."""
    from spikescale.jobs import MACHINE_CONTEXT_KEYS

    assert "disturbance" not in MACHINE_CONTEXT_KEYS
    runs, _ = run_dir
    files = sorted(runs.glob("*.h5"))
    shares = {}
    for max_share in (0.0, 1.0):
        config = {"experiment": {"software": "default"}, "machine": {"disturbance": {"max_other_cpu_share": max_share}}}
        csv = collect(files, "test", tmp_path / "campaign.h5", tmp_path / "runs.csv", resolved_config=config)
        measured = csv[csv["cpu_other_share"].astype(str) != ""]
        assert len(measured) >= 2  # the ok runs measured a share (the failed one may not have)
        shares[max_share] = measured.set_index("run_id")["disturbed"].astype(bool)
        assert (csv["variant"] == "default").all()  # a campaign of one software file names it
    # threshold 0: any other CPU time at all is a disturbance; threshold 1: nothing is
    assert not shares[1.0].any()
    assert shares[0.0].sum() == (csv.set_index("run_id").loc[shares[0.0].index, "cpu_other_share"].astype(float) > 0).sum()
