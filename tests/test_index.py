"""The results index (spikescale.index): one SQLite file per results folder holding every
collected run of every campaign; collect registers, a deleted index is rebuilt from the
campaigns' runs.csv, re-collecting replaces, concurrent collects lose and duplicate
nothing, the schema follows spikescale.columns, and queries filter."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import SNAKEMAKE, REPO, edit_yaml, run_harness, run_spec, write_yaml
from spikescale import index
from spikescale.columns import BY_NAME, NAMES


def synthetic_rows(campaign: str, n: int, machine: str = "local", status_every: int = 0, tag: str = "") -> list[dict]:
    """runs.csv rows as collect writes them: every column, empty where it does not apply."""
    rows = []
    for i in range(n):
        row = dict.fromkeys(NAMES, "")
        backend = ("nest", "brian2", "spinnaker")[i % 3]
        failed = status_every and i % status_every == 0
        row.update(run_id=f"{backend}-n1x1x{1 + i % 4}-seed{i}-r0-{i:012x}", campaign=campaign, backend=backend,
                   machine=machine, model="pd14", n_scaling=0.1, k_scaling=0.1, drive="poisson", seed=i,
                   repetition=0, nodes=1, tasks_per_node=1, threads_per_task=1 + i % 4, record_spikes=False,
                   emulated=backend == "spinnaker", status="failed" if failed else "ok",
                   error="RuntimeError: boom" if failed else "", t_sim_s="" if failed else 1.0 + i / 100,
                   slurm_job_id="000123",  # digits that must stay text
                   git_commit="1234567", file_sha256=f"{tag}{i:064x}"[-64:],
                   started_at="2026-11-29T10:00:00+00:00", finished_at="2026-11-29T10:00:05+00:00")
        if "variant" in BY_NAME:
            row["variant"] = ("default", "nest-3.9")[i % 2]
        rows.append(row)
    return rows


def write_runs_csv(folder: Path, rows: list[dict], columns=NAMES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(columns)).to_csv(folder / "runs.csv", index=False)
    return folder / "runs.csv"


def indexed(results: Path, **where) -> pd.DataFrame:
    return index.query(results, where=where or None)


# ---------------------------------------------------------------- register, query

def test_register_then_query_filters_by_equality_membership_and_empty(tmp_path):
    results = tmp_path / "results"
    write_runs_csv(results / "a", synthetic_rows("a", 12, status_every=5))
    write_runs_csv(results / "b", synthetic_rows("b", 6, machine="jureca"))
    db = index.index_path(results)
    assert index.register(results / "a" / "runs.csv", db) == 12
    assert index.register(results / "b" / "runs.csv", db) == 6

    everything = index.query(results)
    assert len(everything) == 18 and list(everything.columns) == list(index.ORDER)
    assert set(everything["results_path"]) == {"a", "b"}  # relative: the results folder may move
    assert list(everything["run_id"]) == sorted(everything[everything["results_path"] == "a"]["run_id"]) + \
        sorted(everything[everything["results_path"] == "b"]["run_id"])

    nest_ok = index.query(results, where={"backend": "nest", "status": "ok", "campaign": "a"})
    expected = [r["run_id"] for r in synthetic_rows("a", 12, status_every=5) if r["backend"] == "nest"
                and r["status"] == "ok"]
    assert sorted(nest_ok["run_id"]) == sorted(expected) and len(expected) == 3
    some = index.query(results, where={"machine": ["jureca", "elsewhere"], "threads_per_task": [1, 2]})
    assert len(some) == 4 and set(some["threads_per_task"]) == {1, 2}
    failed = index.query(results, where={"t_sim_s": None}, columns=["run_id", "status", "error"])
    assert list(failed.columns) == ["run_id", "status", "error"]
    assert (failed["status"] == "failed").all() and len(failed) == 3  # 0, 5, 10 of campaign a
    assert index.query(results, where={"backend": []}).empty
    # types from Column.kind, text kept as text
    row = everything.iloc[0]
    assert row["slurm_job_id"] == "000123" and row["git_commit"] == "1234567"
    assert str(everything["seed"].dtype) == "Int64" and str(everything["emulated"].dtype) == "boolean"
    assert everything["t_sim_s"].dtype == float and pd.isna(everything["energy_sim_j"]).all()
    assert index.query(results, where={"emulated": True})["backend"].eq("spinnaker").all()
    assert len(index.query(results, where={"emulated": "False", "seed": "3"})) == 2  # text, as the CLI gives


def test_query_names_what_is_wrong(tmp_path):
    with pytest.raises(index.ResultsIndexError, match=r"no results index there.*rebuild"):
        index.query(tmp_path)
    assert not (tmp_path / index.INDEX_NAME).exists()  # a query never creates one
    write_runs_csv(tmp_path / "a", synthetic_rows("a", 2))
    index.rebuild(tmp_path)
    with pytest.raises(index.ResultsIndexError, match=r"unknown column\(s\) \['bakend'\]"):
        index.query(tmp_path, where={"bakend": "nest"})
    with pytest.raises(index.ResultsIndexError, match=r"columns: unknown column\(s\) \['speed'\]"):
        index.query(tmp_path, columns=["run_id", "speed"])
    with pytest.raises(index.ResultsIndexError, match="seed=.*'two' is not an integer"):
        index.query(tmp_path, where={"seed": "two"})


def test_a_bad_runs_csv_is_refused_by_name_and_line_and_the_index_is_unchanged(tmp_path):
    results = tmp_path / "results"
    write_runs_csv(results / "a", synthetic_rows("a", 3))
    index.rebuild(results)
    rows = synthetic_rows("a", 3)
    rows[1]["seed"] = "1.5"
    csv = write_runs_csv(results / "a", rows)
    with pytest.raises(index.ResultsIndexError,
                       match=rf"{csv}: row 2 \(run '{rows[1]['run_id']}'\), column seed \(int\): '1.5' is not an integer"):
        index.register(csv, index.index_path(results))
    assert len(index.query(results)) == 3  # rolled back: the old rows are still there
    rows = synthetic_rows("a", 3)
    rows[2]["run_id"] = ""
    with pytest.raises(index.ResultsIndexError, match=rf"{csv}: row 3 has no run_id"):
        index.register(write_runs_csv(results / "a", rows), index.index_path(results))
    (results / "a" / "runs.csv").write_text("")
    with pytest.raises(index.ResultsIndexError, match="empty file"):
        index.register(csv, index.index_path(results))


def test_a_foreign_sqlite_file_is_not_taken_for_an_index(tmp_path):
    conn = sqlite3.connect(tmp_path / index.INDEX_NAME)
    conn.execute("PRAGMA application_id = 42")
    conn.close()
    write_runs_csv(tmp_path / "a", synthetic_rows("a", 1))
    with pytest.raises(index.ResultsIndexError, match="another application"):
        index.rebuild(tmp_path)
    (tmp_path / index.INDEX_NAME).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(index.ResultsIndexError, match="not a readable SQLite file.*delete it"):
        index.query(tmp_path)


# ---------------------------------------------------------------- replace, rebuild, schema

def test_registering_again_replaces_the_campaigns_rows_only(tmp_path):
    results = tmp_path / "results"
    db = index.index_path(results)
    rows = synthetic_rows("a", 6)
    index.register(write_runs_csv(results / "a", rows), db)
    index.register(write_runs_csv(results / "b", synthetic_rows("b", 4)), db)
    rerun, dropped = rows[2]["run_id"], rows[4]["run_id"]
    rows[2]["file_sha256"] = "f" * 64  # run again: a new file
    del rows[4]  # set aside at the next collect
    index.register(write_runs_csv(results / "a", rows), db)
    a = indexed(results, campaign="a")
    assert len(a) == 5 and dropped not in set(a["run_id"])
    assert a.set_index("run_id").loc[rerun, "file_sha256"] == "f" * 64
    assert len(indexed(results, campaign="b")) == 4
    index.register(write_runs_csv(results / "a", []), db)  # every run set aside
    assert indexed(results, campaign="a").empty and len(index.query(results)) == 4


def test_a_deleted_index_is_rebuilt_with_the_same_rows(tmp_path):
    results = tmp_path / "results"
    db = index.index_path(results)
    for name, n in (("a", 5), ("b", 7), ("c", 0)):
        index.register(write_runs_csv(results / name, synthetic_rows(name, n, status_every=3)), db)
    (results / "not-a-campaign").mkdir()
    before = index.query(results)
    for path in results.glob(index.INDEX_NAME + "*"):
        path.unlink()
    out = subprocess.run([sys.executable, "-m", "spikescale.index", "rebuild", str(results)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "12 run(s) of 3 campaign(s)" in out.stdout
    after = index.query(results)
    # collected_at is runs.csv's time, so only the time of indexing differs
    pd.testing.assert_frame_equal(after.drop(columns="indexed_at"), before.drop(columns="indexed_at"))
    # a campaign folder that is gone leaves the index at the next rebuild
    (results / "b" / "runs.csv").unlink()
    assert index.rebuild(results) == 5 and set(index.query(results)["campaign"]) == {"a"}


def test_the_schema_grows_with_spikescale_columns(tmp_path, monkeypatch):
    """An index made before columns.py gained columns gets them (ALTER TABLE) at the next
    registration; old rows have them empty; a query of an old index returns them empty."""
    results = tmp_path / "results"
    db = index.index_path(results)
    new = ("esyn_uj", "variant") if "variant" in BY_NAME else ("esyn_uj", "spynnaker_version")
    old_order = tuple(n for n in index.ORDER if n not in new)
    with monkeypatch.context() as m:
        m.setattr(index, "ORDER", old_order)
        m.setattr(index, "RUNS_CSV", frozenset(n for n in index.RUNS_CSV if n not in new))
        index.register(write_runs_csv(results / "old", synthetic_rows("old", 3),
                                      columns=[n for n in NAMES if n not in new]), db)
    with sqlite3.connect(db) as conn:
        assert not set(new) & {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    # read by the code that knows the new columns: there, empty
    old = index.query(results, where={new[1]: None}, columns=["run_id", *new])
    assert len(old) == 3 and old[list(new)].isna().all().all()
    assert index.query(results, where={new[1]: "x"}).empty

    rows = synthetic_rows("new", 2)
    for row in rows:
        row["esyn_uj"], row[new[1]] = 4.5, "x"
    index.register(write_runs_csv(results / "new", rows), db)
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(runs)")}
    assert set(new) <= set(columns) and len(columns) == len(index.ORDER)
    if "variant" in BY_NAME:  # the composite index now includes the new column, the old one is gone
        assert "runs_machine_backend_variant_status" in indexes and "runs_machine_backend_status" not in indexes
    both = index.query(results, columns=["campaign", *new])
    assert list(both[both["campaign"] == "new"]["esyn_uj"]) == [4.5, 4.5]
    assert both[both["campaign"] == "old"]["esyn_uj"].isna().all()
    assert len(index.query(results, where={new[1]: "x"})) == 2


def test_columns_are_typed_from_their_declared_kind(tmp_path):
    index.register(write_runs_csv(tmp_path / "a", synthetic_rows("a", 1)), index.index_path(tmp_path))
    with sqlite3.connect(tmp_path / index.INDEX_NAME) as conn:
        types = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(runs)")}
    assert types == {name: index.SQL_TYPE[index.KIND[name]] for name in index.ORDER}
    assert types["rtf"] == "REAL" and types["seed"] == "INTEGER" and types["run_id"] == "TEXT"


def test_the_filter_columns_are_indexed(tmp_path):
    index.register(write_runs_csv(tmp_path / "a", synthetic_rows("a", 50)), index.index_path(tmp_path))
    with sqlite3.connect(tmp_path / index.INDEX_NAME) as conn:
        plan = " ".join(str(r) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM runs WHERE machine = 'x' AND backend = 'nest' AND status = 'ok'"))
    assert "USING INDEX" in plan, plan


def test_on_a_network_file_system_the_index_uses_the_rollback_journal(tmp_path, monkeypatch):
    """WAL's shared memory is per host: on NFS and the like, writers from two hosts would not
    see each other's locks, so the index falls back to the rollback journal there."""
    assert index._mount_fstype(tmp_path) is not None  # read from /proc/self/mounts
    assert index.journal_mode(tmp_path / index.INDEX_NAME) == "WAL"
    monkeypatch.setattr(index, "_mount_fstype", lambda path: "nfs4")
    assert index.journal_mode(tmp_path / index.INDEX_NAME) == "DELETE"
    index.register(write_runs_csv(tmp_path / "a", synthetic_rows("a", 3)), index.index_path(tmp_path))
    with sqlite3.connect(tmp_path / index.INDEX_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert len(index.query(tmp_path)) == 3


# ---------------------------------------------------------------- concurrency

WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from spikescale import index
    runs_csv, db, start, rounds = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    while not start.exists():
        time.sleep(0.001)
    spans = []
    for _ in range(rounds):
        t0 = time.monotonic()
        n = index.register(runs_csv, db)
        spans.append((t0, time.monotonic(), n))
    print(json.dumps(spans))
""")

READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from spikescale import index
    results, start, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    while not start.exists():
        time.sleep(0.001)
    seen = []
    while not stop.exists():
        try:
            frame = index.query(results, columns=["results_path"])
        except index.ResultsIndexError as exc:  # before the first registration made the file
            if "no results index there" not in str(exc):
                raise
            continue
        seen.append(frame["results_path"].value_counts().to_dict())
    print(json.dumps(seen))
""")


def _overlapping(spans_a, spans_b) -> int:
    return sum(1 for a0, a1, _ in spans_a for b0, b1, _ in spans_b if a0 < b1 and b0 < a1)


@pytest.mark.parametrize("same_campaign", [False, True], ids=["two-campaigns", "one-campaign-twice"])
def test_concurrent_registrations_lose_and_duplicate_nothing(tmp_path, same_campaign):
    """Two real processes register at once, over and over, into an index that does not exist
    yet, while a third reads: the final rows are exact, and every read saw each campaign
    whole (all its rows, or none before its first registration), never half or twice."""
    results = tmp_path / "results"
    db = index.index_path(results)
    n, rounds = 200, 12
    csv_a = write_runs_csv(results / "a", synthetic_rows("a", n))
    csv_b = csv_a if same_campaign else write_runs_csv(results / "b", synthetic_rows("b", n + 1, machine="m2"))
    start, stop = tmp_path / "start", tmp_path / "stop"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(csv), str(db), str(start), str(rounds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for csv in (csv_a, csv_b)]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(results), str(start), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the interpreters are up and waiting
    start.touch()
    outs = [w.communicate(timeout=300) for w in workers]
    stop.touch()
    read_out, read_err = reader.communicate(timeout=120)
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, err
    assert reader.returncode == 0, read_err
    spans_a, spans_b = (json.loads(out) for out, _ in outs)
    assert _overlapping(spans_a, spans_b) > 0, "the two processes never registered at the same time"
    assert [s[2] for s in spans_a] == [n] * rounds

    final = index.query(results)
    expected = {"a": n} if same_campaign else {"a": n, "b": n + 1}
    assert final["results_path"].value_counts().to_dict() == expected
    assert not final.duplicated(["results_path", "run_id"]).any()
    for seen in json.loads(read_out):
        assert all(count == expected[path] for path, count in seen.items()), seen


# ---------------------------------------------------------------- from a real collect

@pytest.fixture(scope="module")
def run_files(nest_python, tmp_path_factory):
    """Three real run files of campaign 'test': two ok, one failed (a version mismatch)."""
    runs = tmp_path_factory.mktemp("campaign") / "runs"
    specs = [run_spec(seed=1), run_spec(seed=2, threads_per_task=2), run_spec(seed=3)]
    contexts = [{}, {}, {"software": {"versions": {"nest-simulator": "0.0"}}}]
    for spec, context in zip(specs, contexts, strict=True):
        assert run_harness(spec, runs / f"{spec['run_id']}.h5", context).returncode == 0
    return runs, specs


@pytest.mark.needs_nest
def test_collect_registers_its_campaign_and_recollecting_replaces_it(run_files, tmp_path):
    import csv
    import shutil

    from spikescale.plan import Run
    from spikescale.store import collect, main

    runs, specs = run_files
    results = tmp_path / "results"
    campaign = results / "test"
    shutil.copytree(runs, campaign / "runs")
    db = index.index_path(results)
    files = sorted((campaign / "runs").glob("*.h5"))
    frame = collect(files, "test", campaign / "campaign.h5", campaign / "runs.csv", index_db=db)
    got = index.query(results)
    assert sorted(got["run_id"]) == sorted(frame["run_id"]) == sorted(s["run_id"] for s in specs)
    from_csv = pd.read_csv(campaign / "runs.csv", dtype=str, keep_default_na=False).set_index("run_id")
    for _, row in got.iterrows():  # the index holds what runs.csv says, typed
        assert row["file_sha256"] == from_csv.loc[row["run_id"], "file_sha256"]
        assert row["status"] == from_csv.loc[row["run_id"], "status"]
        assert row["nest_version"] == from_csv.loc[row["run_id"], "nest_version"] != ""
    ok = index.query(results, where={"status": "ok", "backend": "nest", "machine": "local"})
    assert len(ok) == 2 and (ok["rtf"] > 0).all() and (ok["t_sim_s"] > 0).all()
    assert index.query(results, where={"status": "failed"})["error"].str.startswith("RuntimeError").all()
    assert (got["results_path"] == "test").all() and got["collected_at"].notna().all()

    # the workflow's command: the index in the folder above the campaign's, by default;
    # one file damaged: set aside, and gone from the index
    plan = campaign / "plan.csv"
    with open(plan, "w", newline="", encoding="utf-8") as fh:  # as the plan rule writes it
        writer = csv.DictWriter(fh, fieldnames=list(Run.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(specs)
    victim = campaign / "runs" / f"{specs[1]['run_id']}.h5"
    victim.write_bytes(victim.read_bytes()[:1000])
    assert main(["collect", "--campaign", "test", "--plan", str(plan), "--runs-dir", str(campaign / "runs"),
                 "--out-h5", str(campaign / "campaign.h5"), "--out-csv", str(campaign / "runs.csv")]) == 0
    assert sorted(index.query(results)["run_id"]) == sorted([specs[0]["run_id"], specs[2]["run_id"]])

    # the same rows again from a deleted index
    before = index.query(results)
    db.unlink()
    index.rebuild(results)
    pd.testing.assert_frame_equal(index.query(results).drop(columns="indexed_at"), before.drop(columns="indexed_at"))


@pytest.mark.workflow
@pytest.mark.needs_nest
@pytest.mark.slow
def test_two_snakemake_instances_collect_into_one_index(nest_python, config_dir, tmp_path):
    """Two workflows at once (two campaigns, each its own working folder, one results
    folder): the index ends with every run of both, each once, as their runs.csv say."""
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    experiment = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    write_yaml(config_dir / "experiment" / "tiny2.yaml", {**experiment, "name": "tiny2"})
    results = tmp_path / "results"
    procs = []
    for name in ("tiny", "tiny2"):
        workdir = tmp_path / f"workdir_{name}"  # snakemake locks its working folder: one each
        workdir.mkdir()
        cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
               "--config", f"experiment={name}", f"config_dir={config_dir}", f"results_dir={results}"]
        procs.append(subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(out[-3000:] for out in outputs)
    got = index.query(results)
    assert not got.duplicated(["campaign", "run_id"]).any()
    for name in ("tiny", "tiny2"):
        runs = pd.read_csv(results / name / "runs.csv")
        mine = got[got["campaign"] == name]
        assert sorted(mine["run_id"]) == sorted(runs["run_id"]) and len(mine) == 2
        assert sorted(mine["file_sha256"]) == sorted(runs["file_sha256"])
    assert (got["status"] == "ok").all()
    cli = subprocess.run([sys.executable, "-m", "spikescale.index", "query", str(results), "--where",
                          "campaign=tiny", "--where", "threads_per_task=2", "--columns", "run_id,threads_per_task,rtf"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    selected = got[(got["campaign"] == "tiny") & (got["threads_per_task"] == 2)]["run_id"]
    assert "1 run(s)" in cli.stderr and all(r in cli.stdout for r in selected)
