"""Baselines: committed reference values a campaign must meet (make check), the schema's
refusals, and the real command's exit status and words (docs/comparing.md#baselines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from spikescale.analysis import baselines as bl
from spikescale.analysis.compare import read_runs
from spikescale.errors import ConfigError
from test_compare import synthetic_runs

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PYTHON = REPO / ".venvs" / "workflow" / "bin" / "python"


def reference(threads: int = 1, value: float = 10.0, **extra) -> dict:
    return {"machine": "vm", "backend": "nest", "shape": {"nodes": 1, "tasks_per_node": 1, "threads_per_task": threads},
            "metric": "t_sim_s", "value": value, **extra}


def campaign(tmp_path: Path, factor: float = 1.0, **kwargs) -> Path:
    folder = tmp_path / "results" / "nightly"
    folder.mkdir(parents=True, exist_ok=True)
    synthetic_runs("nightly", factor=factor, seed=7, **kwargs).to_csv(folder / "runs.csv", index=False)
    return folder


def baseline_file(tmp_path: Path, refs: list[dict], **top) -> Path:
    path = tmp_path / "baselines" / "nightly.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"references": refs, **top}, sort_keys=False))
    return path


def run_check(baseline: Path, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spikescale.analysis.baselines", str(baseline), str(folder)],
                          check=False, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- the command (what CI calls)

def test_check_passes_when_the_figures_meet_the_baseline(tmp_path):
    # synthetic_runs: t_sim_s = 10 s / threads; baselines at those values
    folder = campaign(tmp_path)
    out = run_check(baseline_file(tmp_path, [reference(1, 10.0), reference(2, 5.0), reference(4, 2.5)]), folder)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("MET: ") == 3
    assert "3 met of 3 reference(s) -> PASS" in out.stdout


def test_check_fails_on_a_regression_and_says_by_how_much_with_its_interval(tmp_path):
    folder = campaign(tmp_path, factor=1.25)  # 25 % slower than the baseline
    out = run_check(baseline_file(tmp_path, [reference(1, 10.0), reference(2, 5.0, tolerance=0.5)]), folder)
    assert out.returncode == 1, out.stdout + out.stderr
    regressed = [line for line in out.stdout.splitlines() if line.startswith("REGRESSED: ")]
    assert len(regressed) == 1
    assert "nest 1x1x1 on vm: t_sim_s: median 12." in regressed[0]
    assert "(+2" in regressed[0] and "95 % interval [" in regressed[0]
    assert "above the limit 10.5 (baseline 10 +5%)" in regressed[0]
    assert "MET: nest 1x1x2" in out.stdout  # its own tolerance of 50 % takes the 25 %
    assert out.stdout.rstrip().endswith("1 regressed, 1 met of 2 reference(s) -> FAIL")


def test_an_improvement_passes_and_asks_for_a_new_baseline(tmp_path):
    out = run_check(baseline_file(tmp_path, [reference(1, 10.0)]), campaign(tmp_path, factor=0.7))
    assert out.returncode == 0
    assert "IMPROVED: " in out.stdout and "update the baseline" in out.stdout


def test_a_reference_no_run_can_be_judged_against_fails(tmp_path):
    folder = campaign(tmp_path, runs_per_shape=2)
    refs = [reference(1, 10.0), reference(8, 1.25), reference(2, 5.0, software={"nest_version": "3.9.0"})]
    out = run_check(baseline_file(tmp_path, refs), folder)
    assert out.returncode == 1
    assert "NOT JUDGED: nest 1x1x1 on vm: t_sim_s: 2 run(s); judging needs at least 3" in out.stdout
    assert "NOT JUDGED: nest 1x1x8 on vm: t_sim_s: no ok run matches" in out.stdout
    assert "NOT JUDGED: nest 1x1x2 on vm, nest_version 3.9.0: t_sim_s: no ok run matches" in out.stdout


def test_disturbed_runs_do_not_count(tmp_path):
    # most runs are disturbed and slow; the undisturbed ones meet the baseline
    folder = campaign(tmp_path, disturbed=lambda threads, i: i % 3 != 0)
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[runs["disturbed"], "t_sim_s"] *= 3
    runs.to_csv(folder / "runs.csv", index=False)
    out = run_check(baseline_file(tmp_path, [reference(1, 10.0)]), folder)
    assert out.returncode == 0, out.stdout
    assert "(6 disturbed run(s) left out)" in out.stdout


def test_a_bad_baseline_file_is_refused_naming_file_key_value_and_allowed(tmp_path):
    bad = reference(1, -3.0, metric="t_sim_ms", software={"nest_version": 3.10})
    bad["shape"]["threads_per_task"] = 0
    out = run_check(baseline_file(tmp_path, [bad], tolerance="5%"), campaign(tmp_path))
    assert out.returncode == 2
    for words in ("nightly.yaml: references[0].metric = 't_sim_ms': allowed: 't_sim_s'",
                  "nightly.yaml: references[0].value = -3.0: must be > 0",
                  "nightly.yaml: references[0].shape.threads_per_task = 0: must be >= 1",
                  "nightly.yaml: tolerance = '5%': must be a number",
                  'references[0].software.nest_version = 3.1: must be a string (YAML read it as a number: quote it'):
        assert words in out.stderr, out.stderr
    missing = run_check(tmp_path / "baselines" / "none.yaml", campaign(tmp_path))
    assert missing.returncode == 2 and "no file" in missing.stderr and "available: nightly" in missing.stderr


def test_the_same_figure_twice_is_refused(tmp_path):
    path = baseline_file(tmp_path, [reference(1, 10.0), reference(1, 11.0)])
    with pytest.raises(ConfigError, match=r"references\[1\].*the same figure as references\[0\]"):
        bl.load_baselines(path)


def test_a_suggested_baseline_is_valid_and_met_by_its_own_campaign(tmp_path):
    folder = campaign(tmp_path)
    out = subprocess.run([sys.executable, "-m", "spikescale.analysis.baselines", "--suggest", str(folder),
                          "--metric", "t_sim_s", "--metric", "mem_peak_mb_max"], check=False, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    path = tmp_path / "suggested.yaml"
    path.write_text(out.stdout)
    baselines = bl.load_baselines(path)
    assert len(baselines["references"]) == 6 and baselines["tolerance"] == 0.05 and baselines["min_runs"] == 3
    table = bl.check(read_runs(folder), baselines)
    assert set(table["outcome"]) == {"met"}


def test_the_committed_baselines_are_valid():
    for path in sorted((REPO / "config" / "baselines").glob("*.yaml")):
        assert bl.load_baselines(path)["references"], path


def test_make_check_is_the_command(tmp_path):
    """`make check` runs the same module, with the campaign's and the baseline's folders."""
    # -o: the environment this test runs in is taken as built (make would otherwise rebuild it
    # when pyproject.toml is newer than its stamp, which is not what is tested here)
    folder = campaign(tmp_path, factor=1.25)
    baseline_file(tmp_path, [reference(1, 10.0)])
    out = subprocess.run(["make", "--no-print-directory", "-o", ".venvs/workflow/.installed", "check", "EXPERIMENT=nightly",
                          f"BASELINES_DIR={tmp_path / 'baselines'}", f"RESULTS_DIR={folder.parent}"],
                         check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "REGRESSED: nest 1x1x1 on vm: t_sim_s" in out.stdout
    baseline_file(tmp_path, [reference(1, 12.5)])
    out = subprocess.run(["make", "--no-print-directory", "-o", ".venvs/workflow/.installed", "check", "EXPERIMENT=nightly",
                          f"BASELINES_DIR={tmp_path / 'baselines'}", f"RESULTS_DIR={folder.parent}"],
                         check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
