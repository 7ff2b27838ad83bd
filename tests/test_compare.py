"""compare: ratios of medians with bootstrap intervals and verdicts, on synthetic runs.csv
frames whose true ratio is known (docs/comparing.md)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from spikescale.analysis import compare as cmp

THREADS = (1, 2, 4)


def synthetic_runs(campaign: str, factor: float = 1.0, runs_per_shape: int = 10, seed: int = 0, spread: float = 0.02,
                   machine: str = "vm", variant: str | None = None, disturbed=None, esyn: bool = False) -> pd.DataFrame:
    """A campaign's runs.csv: NEST at 1, 2 and 4 threads, t_sim_s = 10 s / threads x factor
    with log-normal noise of `spread`; `factor` is the true ratio against factor 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for threads in THREADS:
        for i in range(runs_per_shape):
            noise = float(np.exp(rng.normal(0, spread)))
            t_sim = 10.0 / threads * factor * noise
            rows.append({"run_id": f"{campaign}-{threads}-{i}", "campaign": campaign, "backend": "nest",
                         "emulated": False, "n_scaling": 0.1, "k_scaling": 0.1, "drive": "poisson", "t_model_s": 1.0,
                         "seed": i // 2 + 1, "repetition": i % 2, "nodes": 1, "tasks_per_node": 1,
                         "threads_per_task": threads, "status": "ok", "record_spikes": False, "t_sim_s": t_sim,
                         "rtf": t_sim / 1.0, "t_construct_s": 2.0 * noise, "mem_peak_mb_max": 200.0 * noise,
                         "esyn_uj": 5.0 * factor * noise if esyn else np.nan, "machine": machine})
            if variant is not None:
                rows[-1]["variant"] = variant
            if disturbed is not None:
                rows[-1]["disturbed"] = disturbed(threads, i)
    return pd.DataFrame(rows)


def run_compare(*frames, **kwargs) -> pd.DataFrame:
    """compare on frames as read_runs gives them, one folder each."""
    runs = pd.concat([f.assign(_source=f"results/{f['campaign'].iloc[0]}-{i}", _disturbed_column="disturbed" in f)
                      for i, f in enumerate(frames)], ignore_index=True)
    return cmp.compare(runs, **kwargs)


def t_sim(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["metric"] == "t_sim_s"]


# ---------------------------------------------------------------- verdicts

def test_a_known_slowdown_is_called_slower_with_the_ratio_inside_the_interval():
    table = run_compare(synthetic_runs("old", seed=1), synthetic_runs("new", factor=1.2, seed=2))
    rows = t_sim(table)
    assert len(rows) == len(THREADS)
    assert (rows["verdict"] == "slower").all(), rows[["threads_per_task", "ci_low", "ci_high", "verdict"]]
    assert ((rows["ci_low"] <= 1.2) & (1.2 <= rows["ci_high"])).all()
    assert ((rows["ci_low"] <= rows["ratio"]) & (rows["ratio"] <= rows["ci_high"])).all()
    assert (rows["n_reference"] == 10).all() and (rows["n_candidate"] == 10).all()


def test_a_known_speedup_is_called_faster():
    rows = t_sim(run_compare(synthetic_runs("old", seed=1), synthetic_runs("new", factor=0.8, seed=2)))
    assert (rows["verdict"] == "faster").all()
    assert ((rows["ci_low"] <= 0.8) & (0.8 <= rows["ci_high"])).all()
    assert rows["reason"].str.contains("lies below").all()


def test_memory_and_energy_have_their_own_words():
    old = synthetic_runs("old", seed=1, esyn=True)
    new = synthetic_runs("new", seed=2, esyn=True, factor=1.3)
    new["mem_peak_mb_max"] *= 0.5
    table = run_compare(old, new)
    assert set(table.loc[table["metric"] == "esyn_uj", "verdict"]) == {"more energy"}
    assert set(table.loc[table["metric"] == "mem_peak_mb_max", "verdict"]) == {"less memory"}


def test_energies_of_different_kinds_are_not_compared():
    old = synthetic_runs("old", seed=1, esyn=True).assign(energy_kind="measured")
    new = synthetic_runs("new", seed=2, esyn=True, factor=2.0).assign(energy_kind="modelled")
    esyn = run_compare(old, new)
    esyn = esyn[esyn["metric"] == "esyn_uj"]
    assert (esyn["verdict"] == "no verdict").all()
    assert esyn["reason"].str.contains("energy of another kind on each side \\(measured against modelled\\)").all()
    same = run_compare(old, new.assign(energy_kind="measured"))
    assert set(same.loc[same["metric"] == "esyn_uj", "verdict"]) == {"more energy"}


def test_a_change_inside_the_tolerance_is_no_detectable_change():
    rows = t_sim(run_compare(synthetic_runs("old", seed=1, spread=0.005),
                             synthetic_runs("new", factor=1.02, seed=2, spread=0.005)))
    assert (rows["verdict"] == "no detectable change").all()
    assert rows["reason"].str.contains("within").all()
    # the same 2 % change is detected at a 1 % tolerance
    rows = t_sim(run_compare(synthetic_runs("old", seed=1, spread=0.005),
                             synthetic_runs("new", factor=1.02, seed=2, spread=0.005), tolerance=0.01))
    assert (rows["verdict"] == "slower").all()


def test_a_campaign_compared_with_itself_is_no_detectable_change_everywhere():
    same = synthetic_runs("a", seed=3, spread=0.1, esyn=True)
    table = run_compare(same, same)
    assert set(table["reference"]) == {"a"} and set(table["candidate"]) == {"a [2]"}
    assert len(table) == len(THREADS) * len(cmp.METRICS)
    assert (table["verdict"] == "no detectable change").all(), table[["metric", "ci_low", "ci_high", "verdict"]]
    assert (table["ratio"] == 1.0).all()


def test_wide_spread_is_no_detectable_change_and_says_why():
    rows = t_sim(run_compare(synthetic_runs("old", seed=1, spread=0.3, runs_per_shape=4),
                             synthetic_runs("new", factor=1.1, seed=2, spread=0.3, runs_per_shape=4)))
    assert (rows["verdict"] == "no detectable change").all()
    assert rows["reason"].str.contains("cannot be told from run-to-run spread").all()


def test_output_is_reproducible_and_independent_of_other_groups():
    old, new, other = synthetic_runs("old", seed=1), synthetic_runs("new", factor=1.1, seed=2), \
        synthetic_runs("other", factor=0.9, seed=4)
    first = run_compare(old, new)
    again = run_compare(old, new)
    pd.testing.assert_frame_equal(first, again)
    with_third = run_compare(old, new, other)
    pd.testing.assert_frame_equal(first, with_third[with_third["candidate"] == "new"].reset_index(drop=True))
    assert not run_compare(old, new, seed=99)["ci_low"].equals(first["ci_low"])


# ---------------------------------------------------------------- refusals

def test_too_few_runs_give_no_verdict_with_the_reason():
    rows = t_sim(run_compare(synthetic_runs("old", seed=1, runs_per_shape=2),
                             synthetic_runs("new", factor=2.0, seed=2, runs_per_shape=10)))
    assert (rows["verdict"] == "no verdict").all()
    assert rows["reason"].str.contains("too few runs: 2 reference, 10 candidate").all()
    assert rows["ci_low"].isna().all()
    with pytest.raises(ValueError, match="at least 3"):
        run_compare(synthetic_runs("a"), synthetic_runs("b"), min_runs=2)


def test_disturbed_runs_are_left_out_of_the_verdict():
    # most of the candidate's runs are disturbed and slow: without them, nothing changed
    def flag(threads, i):
        return i % 3 != 0

    new = synthetic_runs("new", seed=2, disturbed=flag)
    new.loc[new["disturbed"], "t_sim_s"] *= 3
    old = synthetic_runs("old", seed=1, disturbed=lambda t, i: False)
    rows = t_sim(run_compare(old, new))
    assert (rows["verdict"] == "no detectable change").all()
    assert (rows["n_candidate"] == 4).all() and (rows["n_candidate_disturbed"] == 6).all()
    assert rows["reason"].str.contains("after leaving out 0 disturbed reference and 6 disturbed candidate").all()
    assert (rows["disturbed"] == "measured").all()
    assert (rows["ratio"] < 1.05).all()
    # counted anyway, the disturbed runs would have tripled the median
    counted = t_sim(run_compare(old.drop(columns="disturbed"), new.drop(columns="disturbed")))
    assert (counted["ratio"] > 2.5).all()
    assert (counted["disturbed"] == "not measured for the reference and the candidate (no 'disturbed' column in its "
            "runs.csv; every run counts)").all()
    # one side without the column: that side is named, its runs all count
    one = t_sim(run_compare(old.drop(columns="disturbed"), new))
    assert one["disturbed"].str.startswith("not measured for the reference (").all()
    assert (one["n_candidate"] == 4).all() and (one["n_reference"] == 10).all()


def test_too_many_disturbed_runs_refuse_a_verdict():
    new = synthetic_runs("new", seed=2, runs_per_shape=4, disturbed=lambda t, i: i > 0)
    old = synthetic_runs("old", seed=1, disturbed=lambda t, i: False)
    rows = t_sim(run_compare(old, new))
    assert (rows["verdict"] == "no verdict").all()
    assert rows["reason"].str.contains("too few runs: 10 reference, 1 candidate after leaving out 0 disturbed "
                                       "reference and 3 disturbed candidate").all()


def test_only_ok_performance_runs_count():
    old = synthetic_runs("old", seed=1)
    new = synthetic_runs("new", seed=2)
    slow = new.copy()
    slow["t_sim_s"] *= 5
    failed, validation = slow.assign(status="failed"), slow.assign(record_spikes=True)
    rows = t_sim(run_compare(old, pd.concat([new, failed, validation])))
    assert (rows["verdict"] == "no detectable change").all()
    assert (rows["n_candidate"] == 10).all()


def test_an_empty_figure_is_reported_as_not_measured():
    table = run_compare(synthetic_runs("old", seed=1), synthetic_runs("new", seed=2))
    esyn = table[table["metric"] == "esyn_uj"]
    assert (esyn["verdict"] == "not measured").all()
    assert esyn["reason"].str.contains("empty in every counted run of the reference and the candidate").all()


def test_only_shared_shapes_are_compared_and_the_rest_is_named():
    old = synthetic_runs("old", seed=1)
    new = synthetic_runs("new", seed=2)
    new = new[new["threads_per_task"] != 4]
    runs = pd.concat([old.assign(_source="a"), new.assign(_source="b")], ignore_index=True)
    assert set(cmp.compare(runs)["threads_per_task"]) == {1, 2}
    assert cmp.unshared(runs) == ["nest 1x1x4, N x0.1 K x0.1 poisson 1 s: only in old"]


def test_groups_by_variant_and_machine():
    a = synthetic_runs("c", seed=1, variant="nest-3.9", machine="A")
    b = synthetic_runs("c", seed=2, variant="nest-3.10", factor=1.25, machine="B")
    runs = pd.concat([a, b], ignore_index=True).assign(_source="results/c")
    by_variant = t_sim(cmp.compare(runs, by="variant"))
    assert set(by_variant["reference"]) == {"nest-3.9"} and (by_variant["verdict"] == "slower").all()
    flipped = t_sim(cmp.compare(runs, by="variant", reference="nest-3.10"))
    assert (flipped["verdict"] == "faster").all()
    assert (t_sim(cmp.compare(runs, by="machine"))["candidate"] == "B").all()
    with pytest.raises(ValueError, match="only one campaign"):
        cmp.compare(runs, by="campaign")
    with pytest.raises(ValueError, match="no such variant"):
        cmp.compare(runs, by="variant", reference="nest-2")


def test_backends_compared_on_the_shapes_they_share():
    nest = synthetic_runs("c", seed=1)
    brian2 = synthetic_runs("c", seed=2, factor=0.5).assign(backend="brian2")
    emulated = synthetic_runs("c", seed=3, factor=3.0).assign(backend="spinnaker", emulated=True)
    runs = pd.concat([nest, brian2, emulated], ignore_index=True).assign(_source="results/c")
    rows = t_sim(cmp.compare(runs, by="backend"))
    assert rows["backend"].isna().all()  # the groups are the backends; rows are keyed by model and shape
    assert set(rows.loc[rows["candidate"] == "brian2", "verdict"]) == {"faster"}
    assert set(rows.loc[rows["candidate"] == "spinnaker (emulated)", "verdict"]) == {"slower"}
    assert cmp.describe_key(rows.iloc[0]) == "1x1x1, N x0.1 K x0.1 poisson 1 s"


def test_a_runs_csv_without_variant_is_its_campaigns_single_software(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    synthetic_runs("c").to_csv(folder / "runs.csv", index=False)
    assert set(cmp.read_runs(folder)["variant"]) == {cmp.SINGLE_SOFTWARE}
    (folder / "config_resolved.json").write_text('{"experiment": {"software": "nest-site"}}')
    assert set(cmp.read_runs(folder)["variant"]) == {"nest-site"}


def test_the_verdict_rule_at_its_edges():
    assert cmp.verdict(1.051, 1.2, 0.05)[0] == "slower"
    assert cmp.verdict(1.049, 1.2, 0.05)[0] == "no detectable change"
    assert cmp.verdict(0.5, 1 / 1.05 - 1e-6, 0.05)[0] == "faster"
    assert cmp.verdict(0.5, 1 / 1.05 + 1e-6, 0.05)[0] == "no detectable change"


# ---------------------------------------------------------------- the command

def test_the_command_writes_table_and_figure_and_prints_the_verdicts(tmp_path):
    for name, factor, seed in (("old", 1.0, 1), ("new", 1.2, 2)):
        (tmp_path / name).mkdir()
        synthetic_runs(name, factor=factor, seed=seed).to_csv(tmp_path / name / "runs.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "spikescale.analysis.compare", str(tmp_path / "old"),
                          str(tmp_path / "new"), "--table", str(tmp_path / "c.csv"), "--png", str(tmp_path / "c.png")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "new against old: 6 slower, 6 no detectable change, 3 not measured" in out.stdout
    assert "disturbed: not measured" in out.stdout
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table.columns) == cmp.COLUMNS
    assert (tmp_path / "c.png").stat().st_size > 10_000
    itself = subprocess.run([sys.executable, "-m", "spikescale.analysis.compare", str(tmp_path / "new"),
                             str(tmp_path / "new")], check=False, capture_output=True, text=True, timeout=120)
    assert itself.returncode == 0, itself.stderr
    assert "new [2] against new: 12 no detectable change, 3 not measured" in itself.stdout
    bad = subprocess.run([sys.executable, "-m", "spikescale.analysis.compare", str(tmp_path / "nowhere"),
                          str(tmp_path / "new")], check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nowhere/runs.csv: no such file" in bad.stderr


@pytest.mark.parametrize("n", [7, 8])
def test_medians_read_off_sorted_values_equal_the_medians_of_the_resamples(n):
    """The shortcut (partition the resampled positions, read the sorted values) gives exactly
    the median of each resample, for odd and even numbers of runs."""
    values = np.random.default_rng(5).normal(10, 2, n)
    fast = cmp.bootstrap_medians(values, 500, np.random.default_rng(1))
    idx = np.random.default_rng(1).integers(0, n, size=(500, n), dtype=np.int32)
    slow = np.median(np.sort(values)[idx], axis=1)
    np.testing.assert_array_equal(fast, slow)


# ---------------------------------------------------------------- the workflow's settings

def test_the_compare_settings_are_checked(tmp_path):
    from spikescale.errors import ConfigError
    from spikescale.settings import workflow_settings

    (tmp_path / "config").mkdir()
    settings = workflow_settings({"experiment": "x", "compare_with": "old"}, tmp_path)
    assert settings.compare_with == ("old",) and settings.compare_by == "campaign"
    settings = workflow_settings({"experiment": "x", "compare_with": ["a", "b"], "compare_by": "machine"}, tmp_path)
    assert settings.compare_with == ("a", "b") and settings.compare_by == "machine"
    assert workflow_settings({"experiment": "x"}, tmp_path).compare_by is None
    for config, words in (({"compare_by": "os"}, "compare_by = 'os': allowed: campaign, variant, machine, backend"),
                          ({"compare_with": "a/../b"}, "compare_with = 'a/../b': must be a campaign name"),
                          ({"compare_by": "campaign"}, "comparing campaigns needs compare_with=<campaign>")):
        with pytest.raises(ConfigError, match=words):
            workflow_settings({"experiment": "x", **config}, tmp_path)


@pytest.mark.workflow
def test_the_workflow_compares_with_another_campaign(tmp_path):
    """`--config compare_with=old` adds rule compare, which reads the two runs.csv files only
    (here planted; --allowed-rules keeps Snakemake from running the campaign itself)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for name, factor, seed in (("old", 1.0, 1), ("default", 1.2, 2)):
        (tmp_path / name).mkdir()
        synthetic_runs(name, factor=factor, seed=seed).to_csv(tmp_path / name / "runs.csv", index=False)
    snakemake = repo / ".venvs" / "workflow" / "bin" / "snakemake"
    # --directory: Snakemake's own state in the test's folder, not the repository's
    out = subprocess.run([str(snakemake), "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
                          "--cores", "1", "--allowed-rules", "compare", "--config", "experiment=default",
                          f"results_dir={tmp_path}", "compare_with=old", "--", str(tmp_path / "default/compare/vs_old.csv")],
                         check=False, cwd=repo, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = pd.read_csv(tmp_path / "default" / "compare" / "vs_old.csv")
    assert set(table["reference"]) == {"old"} and set(table["candidate"]) == {"default"}
    assert set(table.loc[table["metric"] == "t_sim_s", "verdict"]) == {"slower"}
    assert (tmp_path / "default" / "compare" / "vs_old.png").is_file()
    missing = subprocess.run([str(snakemake), "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
                              "-n", "--cores", "1", "--config", "experiment=default",
                              f"results_dir={tmp_path}", "compare_with=nothere"],
                             check=False, cwd=repo, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "nothere/runs.csv does not exist; run that campaign first" in missing.stdout + \
        missing.stderr


def test_the_comparison_asked_for_names_its_files(tmp_path):
    from spikescale import comparison
    from spikescale.settings import WorkflowSettings

    def settings(**kw):
        return WorkflowSettings(experiment="x", config_dir=tmp_path, results_dir=str(tmp_path), **kw)

    class Campaign:  # what comparison reads of spikescale.campaign.Campaign
        name, experiment, single_software, variants = "x", {"software": ["a", "b"]}, False, ["a", "b"]

    assert comparison.outputs(settings(), Campaign, "r/x") == []
    assert comparison.tag(settings(compare_with=("old",), compare_by="campaign")) == "vs_old"
    assert comparison.tag(settings(compare_with=("a", "b"), compare_by="machine")) == "vs_a+b.by_machine"
    assert comparison.outputs(settings(compare_by="variant"), Campaign, "r/x") == ["r/x/compare/by_variant.csv",
                                                                                   "r/x/compare/by_variant.png"]
    assert comparison.reference(settings(compare_by="variant"), Campaign) == "a"
    with pytest.raises(comparison.ComparisonError, match="old/runs.csv does not exist; run that campaign first"):
        comparison.folders(settings(compare_with=("old",), compare_by="campaign"), "r/x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "runs.csv").write_text("run_id\n")
    assert comparison.folders(settings(compare_with=("old",), compare_by="campaign"), "r/x") == [
        f"{tmp_path}/old", "r/x"]
    Campaign.single_software = True
    with pytest.raises(comparison.ComparisonError, match="has one software variant"):
        comparison.outputs(settings(compare_by="variant"), Campaign, "r/x")
