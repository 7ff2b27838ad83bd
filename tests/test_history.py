"""The history figure: a figure's median per series across campaigns' dates or software
versions, read from the results index (spikescale.index), built here from small campaigns."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from spikescale import index
from spikescale.analysis.history import history_table
from test_compare import synthetic_runs

DAY_S = 86400


@pytest.fixture
def results(tmp_path):
    """Three campaigns collected a day apart: two of NEST 3.9.0, then 3.10.0 15 % slower;
    the last has two disturbed, very slow runs at 1 thread."""
    for day, (name, version, factor) in enumerate((("n39a", "3.9.0", 1.0), ("n39b", "3.9.0", 1.0),
                                                    ("n310", "3.10.0", 1.15))):
        folder = tmp_path / name
        folder.mkdir()
        runs = synthetic_runs(name, factor=factor, seed=day, disturbed=lambda t, i: False)
        runs["nest_version"] = version
        if name == "n310":
            slow = (runs["threads_per_task"] == 1) & (runs.index % 5 == 0)
            runs.loc[slow, "disturbed"] = True
            runs.loc[slow, "t_sim_s"] *= 10
        runs.to_csv(folder / "runs.csv", index=False)
        os.utime(folder / "runs.csv", (1.7e9 + day * DAY_S, 1.7e9 + day * DAY_S))
    index.rebuild(tmp_path)
    return tmp_path


def test_by_date_one_point_per_campaign_in_the_order_collected(results):
    table = history_table(index.query(results), "t_sim_s", "date")
    one = table[table["threads_per_task"] == 1]
    assert list(one["x"]) == ["n39a", "n39b", "n310"]
    assert list(one["n_runs"]) == [10, 10, 8] and list(one["n_disturbed"]) == [0, 0, 2]
    # 10 s at 1 thread, then 15 % more; the disturbed runs (100 s) are not in the median
    assert one["median"].iloc[0] == pytest.approx(10, rel=0.03)
    assert one["median"].iloc[2] == pytest.approx(11.5, rel=0.03)
    assert ((one["ci_low"] <= one["median"]) & (one["median"] <= one["ci_high"])).all()


def test_by_version_pools_the_campaigns_of_a_version(results):
    table = history_table(index.query(results, where={"threads_per_task": 2}), "t_sim_s", "version")
    assert list(table["x"]) == ["nest 3.9.0", "nest 3.10.0"]
    assert list(table["n_runs"]) == [20, 10]
    assert table["campaigns"].iloc[0] == "n39a, n39b"
    assert table["ci_high"].iloc[0] < table["ci_low"].iloc[1]  # 15 % apart, clearly


def test_a_point_of_too_few_runs_has_no_interval(results):
    runs = index.query(results, where={"campaign": "n39a", "threads_per_task": 4, "seed": 1})
    table = history_table(runs, "t_sim_s", "date")
    assert list(table["n_runs"]) == [2] and table["ci_low"].isna().all()


def test_the_command_draws_the_figure_with_a_baseline(results, tmp_path):
    baseline = tmp_path / "b.yaml"
    baseline.write_text(yaml.safe_dump({"references": [
        {"machine": "vm", "backend": "nest", "shape": {"nodes": 1, "tasks_per_node": 1, "threads_per_task": 1},
         "metric": "t_sim_s", "value": 10.0}]}))
    out = subprocess.run([sys.executable, "-m", "spikescale.analysis.history", str(results), "--x", "version",
                          "--baseline", str(baseline), "--png", str(tmp_path / "h.png"), "--table",
                          str(tmp_path / "h.csv")], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "h.png").stat().st_size > 10_000
    assert "nest 3.10.0" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "spikescale.analysis.history", str(tmp_path / "none"), "--png",
                          str(tmp_path / "x.png")], check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "index" in bad.stderr
