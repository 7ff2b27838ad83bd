"""A campaign's submission-ready entry for the PD14 community table
(spikescale.analysis.submission): the table's fields from the ok, undisturbed runs, the
caveats it must carry, the campaign's provenance; energy at the outlet only where the runs
have it, else said plainly."""

import json
import math

import pandas as pd
import pytest
import yaml

from spikescale.analysis import submission
from spikescale.analysis.submission import energy_of, entries

from helpers import snakemake

FIELDS = ["simulator", "num_nodes", "system", "process_node_nm", "rtf", "esyn_muJ", "drive", "comment"]


def run(**overrides):
    row = {"run_id": "r", "campaign": "c", "backend": "nest", "variant": "default", "platform": "cpu",
           "machine": "slurm-generic", "n_scaling": 1.0, "k_scaling": 1.0, "drive": "poisson", "t_model_s": 10.0,
           "t_presim_model_s": 0.5, "seed": 1, "record_spikes": False, "status": "ok", "nodes": 2,
           "tasks_per_node": 2, "threads_per_task": 64, "rtf": 1.0, "esyn_uj": 0.5, "energy_kind": "measured",
           "energy_source": "measured: rapl package-0 on 2 node(s)", "energy_unavailable": "",
           "validation": "not checked: a performance run", "nest_version": "3.10.0", "git_commit": "abc123",
           "git_dirty": False, "host": "n001", "disturbed": False}
    return row | overrides


def frame(**overrides):
    return pd.DataFrame([run(seed=s, run_id=f"p{s}", rtf=0.5 + 0.1 * s, **overrides) for s in range(1, 4)])


def test_outlet_energy_used_when_every_run_has_it():
    e = energy_of(frame(esyn_outlet_uj=0.9, energy_outlet_source="outlet: psu 0.94, pue 1.3 (site sheet 2026)"))
    assert e == {"esyn_muJ": 0.9, "at_outlet": True, "energy": "at the power outlet (outlet: psu 0.94, pue 1.3 "
                                                                "(site sheet 2026))"}


def test_metered_energy_labelled_not_at_the_outlet():
    e = energy_of(frame(esyn_outlet_uj=math.nan, energy_outlet_source="unavailable: no energy.outlet declared"))
    assert e["esyn_muJ"] == 0.5 and not e["at_outlet"]
    assert e["energy"] == ("measured, not at the outlet (measured: rapl package-0 on 2 node(s)); outlet: "
                           "unavailable: no energy.outlet declared")


def test_older_runs_csv_without_outlet_columns():
    e = energy_of(frame())
    assert e["esyn_muJ"] == 0.5 and not e["at_outlet"] and "no esyn_outlet_uj in runs.csv" in e["energy"]


def test_no_energy_at_all_is_unavailable_with_the_reason():
    e = energy_of(frame(esyn_uj=math.nan, energy_kind="", energy_source="unavailable: rapl: no powercap interface",
                        energy_unavailable="rapl: no powercap interface"))
    assert e["esyn_muJ"] is None and e["energy"].startswith("unavailable: rapl: no powercap interface")


def test_entry_fields_caveats_and_disturbed_runs_left_out(tmp_path):
    rows = frame(esyn_outlet_uj=0.9, energy_outlet_source="outlet: declared").to_dict("records")
    rows.append(run(seed=4, run_id="p4", rtf=99.0, disturbed=True))  # not in the median
    rows.append(run(seed=5, run_id="p5", rtf=77.0, status="failed"))
    rows.append(run(seed=1, run_id="v1", record_spikes=True, nodes=1, tasks_per_node=1,
                    validation="valid (1 of 24 outside the reference spread, 1 allowed)"))
    folder = tmp_path / "c"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    out = entries(folder)
    (one,) = out["entries"]
    assert list(one["entry"]) == FIELDS
    assert one["entry"]["rtf"] == pytest.approx(0.7) and one["rtf_spread"] == {"min": 0.6, "max": 0.8, "n_runs": 3}
    assert one["entry"]["simulator"] == "nest_cpu" and one["entry"]["num_nodes"] == 2
    assert one["entry"]["drive"] == "Poisson" and one["entry"]["esyn_muJ"] == 0.9
    assert one["entry"]["process_node_nm"] == "not declared"
    caveats = one["caveats"]
    assert caveats["scale"] == "full scale" and caveats["seeds"] == 3 and caveats["model_time_s"] == "10"
    assert caveats["energy_at_outlet"] is True
    assert caveats["validation"] == "1 of 1 validation run(s) valid"
    assert caveats["recipe"].startswith("not met: seeds (seeds: 3 < 10)")
    assert one["provenance"]["git_commit"] == "abc123" and one["provenance"]["software"] == {"nest": "3.10.0"}
    assert one["provenance"]["config_sha256"].startswith("not recorded")


@pytest.mark.workflow
@pytest.mark.needs_nest
@pytest.mark.slow
def test_real_small_campaign_gives_entry_recipe_and_community_table(nest_python, config_dir, tmp_path):
    """The tiny campaign (NEST, scale 0.02) through the real workflow: its default outputs
    include the recipe check, the community entry and the published points."""
    # What is tested here is the entry, not this machine's quiet: on a shared machine every run
    # may count as disturbed and be left out (tested above), so no run counts as disturbed here.
    machine = yaml.safe_load((config_dir / "machine" / "local.yaml").read_text())
    machine["disturbance"] = {"max_other_cpu_share": 1.0}
    (config_dir / "machine" / "local.yaml").write_text(yaml.safe_dump(machine))
    results = tmp_path / "results"
    out = results / "tiny" / "analysis"
    snakemake(config_dir, results)  # the default target: they are part of every campaign's analysis
    runs = pd.read_csv(results / "tiny" / "runs.csv")
    data = yaml.safe_load((out / "community_entry.yaml").read_text())
    assert data["campaign"] == "tiny" and len(data["entries"]) == 2  # 1 and 2 threads
    for item, threads in zip(data["entries"], (1, 2), strict=True):
        shape = runs[runs["threads_per_task"] == threads]
        assert item["entry"]["rtf"] == pytest.approx(shape["rtf"].median(), rel=1e-5)
        assert item["entry"]["simulator"] == "nest_cpu" and item["entry"]["drive"] == "Poisson"
        assert item["caveats"]["scale"].startswith("NOT full scale: n_scaling 0.02")
        assert item["caveats"]["seeds"] == 2 and item["caveats"]["model_time_s"] == "0.2"
        assert item["caveats"]["validation"].startswith("not validated")
        prov = item["provenance"]
        assert prov["campaign"] == "tiny" and prov["machine"] == "local"
        # every commit the runs came from (others may commit while a campaign runs)
        assert set(prov["git_commit"].split("; ")) == set(shape["git_commit"]) and len(prov["config_sha256"]) == 64
        assert prov["software"]["nest"] == runs["nest_version"].iloc[0]
        assert "machine local" in item["entry"]["system"] and "not recorded" not in item["entry"]["system"]
    table = pd.read_csv(out / "recipe.csv")
    lacking = set(table.loc[table["status"] == "not met", "point"])
    assert {"full_scale", "model_time", "seeds", "accuracy"} <= lacking
    assert table.set_index("point").loc["rtf", "status"] == "met"
    assert (out / "recipe.txt").read_text().startswith("PD14 community recipe: campaign tiny, collected runs")
    assert len(pd.read_csv(out / "community.csv")) == 14
    # all three in the HTML report, under their own category
    snakemake(config_dir, results, "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Community" in html and all(name in html for name in ("recipe.csv", "community_entry.yaml",
                                                                 "community.csv"))


def test_process_node_from_the_machine_file(tmp_path, config_dir):
    from spikescale.config import load_campaign
    from spikescale.errors import ConfigError

    machine = yaml.safe_load((config_dir / "machine" / "slurm-generic.yaml").read_text())
    (config_dir / "machine" / "slurm-generic.yaml").write_text(yaml.safe_dump(machine | {"process_node_nm": 7}))
    campaign = load_campaign("recipe_pd14_dc", config_dir)  # the schema accepts it
    folder = tmp_path / "c"
    folder.mkdir()
    frame().to_csv(folder / "runs.csv", index=False)
    (folder / "config_resolved.json").write_text(json.dumps({"files": campaign.files, **campaign.resolved()}))
    (one,) = entries(folder)["entries"]
    assert one["entry"]["process_node_nm"] == 7
    assert one["provenance"]["config_files"]["machine"].endswith("slurm-generic.yaml")
    with pytest.raises(ConfigError, match=r"slurm-generic.yaml: process_node_nm = -7: must be > 0"):
        (config_dir / "machine" / "slurm-generic.yaml").write_text(yaml.safe_dump(machine | {"process_node_nm": -7}))
        load_campaign("recipe_pd14_dc", config_dir)


def test_command_line(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    frame().to_csv(folder / "runs.csv", index=False)
    assert submission.main([str(folder), "--out", str(folder / "analysis" / "community_entry.yaml")]) == 0
    written = yaml.safe_load((folder / "analysis" / "community_entry.yaml").read_text())
    assert written == yaml.safe_load(capsys.readouterr().out) and len(written["entries"]) == 1
    assert submission.main([str(tmp_path / "none")]) == 2
