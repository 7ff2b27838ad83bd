"""The community's benchmarking recipe as a check (spikescale.analysis.recipe): on a plan
alone and on collected runs, each point met, not met or not checkable, with its values."""

import json

import pandas as pd
import pytest

from spikescale.analysis import recipe
from spikescale.config import load_campaign
from spikescale.plan import plan_runs, write_plan_csv

from helpers import REPO


def planned(experiment: str, folder):
    """What the plan rule writes for an experiment of the repository's config/: plan.csv and
    config_resolved.json (spikescale.plan.main does the same)."""
    campaign = load_campaign(experiment, REPO / "config")
    folder.mkdir(parents=True, exist_ok=True)
    write_plan_csv(plan_runs(campaign), folder / "plan.csv")
    (folder / "config_resolved.json").write_text(json.dumps({"files": campaign.files, **campaign.resolved()}))
    return folder


def by_point(points):
    return {p.point: p for p in points}


def test_default_campaign_lacks_scale_model_time_and_seeds(tmp_path):
    points = by_point(recipe.check(recipe.read_campaign(planned("default", tmp_path / "default"))))
    assert {name for name, p in points.items() if p.status == recipe.NOT_MET} == {"full_scale", "model_time", "seeds"}
    assert points["model_time"].reason == "model time: 1 s < 10 s required (t_sim_ms)"
    assert points["seeds"].reason == "seeds: 2 < 10"
    assert points["full_scale"].reason == "scale: n_scaling 0.1, k_scaling 0.1, recipe needs 1.0"
    assert points["accuracy"].status == recipe.MET and "10 NEST seeds" in points["accuracy"].found
    assert points["energy_outlet"].status == recipe.NOT_CHECKABLE and "'local'" in points["energy_outlet"].reason
    assert points["initial_conditions"].status == recipe.MET and "initial_potentials_mV" in points[
        "initial_conditions"].reason


@pytest.mark.parametrize("experiment", ["recipe_pd14_dc", "recipe_pd14_poisson"])
def test_recipe_experiments_plan_meets_every_checkable_point(tmp_path, experiment):
    campaign = recipe.read_campaign(planned(experiment, tmp_path / experiment))
    points = by_point(recipe.check(campaign))
    assert [name for name, p in points.items() if p.status == recipe.NOT_MET] == []
    # what only runs can show stays open, never claimed
    assert {name for name, p in points.items() if p.status == recipe.NOT_CHECKABLE} == {"rtf", "energy_outlet"}
    assert points["drive"].found == f"drive {experiment.rsplit('_', 1)[1]}"
    assert "not met: nothing" in recipe.recipe_text(campaign, list(points.values()))


def runs_csv(tmp_path, rows):
    folder = tmp_path / "campaign"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    return folder


def run(**overrides):
    row = {"run_id": "r", "campaign": "c", "backend": "nest", "variant": "default", "n_scaling": 1.0,
           "k_scaling": 1.0, "drive": "dc", "t_model_s": 10.0, "t_presim_model_s": 0.5, "seed": 1,
           "record_spikes": False, "status": "ok", "nodes": 1, "tasks_per_node": 2, "threads_per_task": 64,
           "rtf": 0.8, "validation": "not checked: a performance run"}
    return row | overrides


def full_campaign(**overrides):
    rows = [run(seed=s, run_id=f"p{s}", **overrides) for s in range(1, 11)]
    rows += [run(seed=s, run_id=f"v{s}", record_spikes=True, validation="valid", nodes=1, tasks_per_node=1)
             for s in range(1, 11)]
    return rows


def test_collected_runs_meeting_the_recipe(tmp_path):
    rows = full_campaign(esyn_outlet_uj=0.9, energy_outlet_source="outlet: psu 0.94, pue 1.2 (vendor sheet)")
    points = by_point(recipe.check(recipe.read_campaign(runs_csv(tmp_path, rows))))
    assert all(p.status == recipe.MET for p in points.values()), [p for p in points.values() if p.status != "met"]
    assert points["rtf"].found == "RTF 0.8 to 0.8 over 10 ok, undisturbed run(s)"
    assert "10 of 10 validation run(s) valid" in points["accuracy"].found


def test_collected_runs_say_what_they_lack(tmp_path):
    rows = full_campaign(esyn_outlet_uj=float("nan"),
                         energy_outlet_source="unavailable: the machine declares no energy.outlet")
    rows[12]["validation"] = "invalid: 3 of 24 outside the reference spread: L4E rate"
    rows[3]["status"] = "failed"  # eight ok, undisturbed seeds left at this shape
    rows[4]["disturbed"] = True
    points = by_point(recipe.check(recipe.read_campaign(runs_csv(tmp_path, rows))))
    assert points["seeds"].reason == "seeds: 8 < 10"
    assert points["accuracy"].status == recipe.NOT_MET
    assert "1 invalid, e.g. invalid: 3 of 24" in points["accuracy"].reason
    assert points["energy_outlet"].reason == ("energy at the outlet: unavailable: the machine declares no "
                                              "energy.outlet")


def test_older_runs_csv_without_outlet_columns_and_spikes_everywhere(tmp_path):
    rows = [run(seed=s, run_id=f"p{s}", record_spikes=True, t_model_s=1.0) for s in range(1, 11)]
    points = by_point(recipe.check(recipe.read_campaign(runs_csv(tmp_path, rows))))
    assert points["no_spike_recording"].reason.startswith("spikes recorded in performance runs")
    assert points["energy_outlet"].status == recipe.NOT_MET and "unavailable" in points["energy_outlet"].reason
    assert points["model_time"].reason == "model time: 1 s < 10 s required (t_sim_ms)"


def test_command_line_writes_table_and_text_and_strict_exit(tmp_path, capsys):
    folder = planned("default", tmp_path / "default")
    out = tmp_path / "out"
    assert recipe.main([str(folder), "--csv", str(out / "recipe.csv"), "--txt", str(out / "recipe.txt")]) == 0
    table = pd.read_csv(out / "recipe.csv")
    assert list(table.columns) == ["point", "recipe", "status", "found", "reason"] and len(table) == 10
    assert sorted(table.loc[table["status"] == "not met", "point"]) == ["full_scale", "model_time", "seeds"]
    text = (out / "recipe.txt").read_text()
    assert text == capsys.readouterr().out and text.endswith("not met: model_time, seeds, full_scale\n")
    assert recipe.main([str(folder), "--strict"]) == 1
    (tmp_path / "empty").mkdir()
    assert recipe.main([str(tmp_path / "empty")]) == 2
    assert "neither runs.csv nor plan.csv" in capsys.readouterr().err
