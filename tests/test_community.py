"""The community's published PD14 points: one data file (source and date named), read by
spikescale.analysis.community, all 14 of them in the RTF / E_syn figure and table."""

from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml

from spikescale.analysis import community
from spikescale.analysis.community import COMMUNITY, CommunityDataError, community_table, read_community
from spikescale.analysis.rtf_energy_plot import rtf_energy_figure
from spikescale.analysis.rtf_energy_table import rtf_energy_table

matplotlib.use("Agg")
DATA = Path(__file__).resolve().parents[1] / "analysis" / "data" / "community_pd14.yaml"


@pytest.fixture(scope="module")
def raw():
    """The data file read here on its own, not through the module under test."""
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


def test_data_file_names_its_source_and_date_and_holds_14_points(raw):
    assert community.DATA_FILE == DATA
    assert "Senk et al. (2026)" in raw["source"]["table"]
    assert raw["source"]["data_file"] == "docs/benchmarking/_scripts/performance_data_raw.yaml"
    assert "INM-6/microcircuit-PD14-model" in raw["source"]["repository"]
    assert pd.Timestamp(raw["date"]).year >= 2026
    assert len(raw["points"]) == 14 and len(COMMUNITY) == 14


def test_every_value_equals_the_file(raw):
    for point, entry in zip(COMMUNITY, raw["points"], strict=True):
        for key, value in entry.items():
            assert getattr(point, key) == value, (entry["study"], key)
    studies = [p.study for p in COMMUNITY]
    # the two that the hard-coded copy lacked
    assert ("Rhodes 2019", "Poisson", 0.628) in [(p.study, p.drive, p.esyn_uj) for p in COMMUNITY]
    heittmann = COMMUNITY[studies.index("Heittmann 2022")]
    assert (heittmann.nodes, heittmann.rtf, heittmann.esyn_uj, heittmann.drive) == (345, 0.25, 0.284, "Poisson")


def test_table_has_14_rows_with_the_file_s_values(raw):
    table = community_table()
    assert len(table) == 14 and table["label"].is_unique
    assert list(table["rtf"]) == [e["rtf"] for e in raw["points"]]
    published = [e["esyn_uj"] for e in raw["points"] if e["esyn_uj"] is not None]
    assert list(table["esyn_uj"].dropna()) == published and table["esyn_uj"].isna().sum() == 1


def test_figure_plots_14_community_points_and_names_the_source(raw):
    fig = rtf_energy_figure(rtf_energy_table(pd.DataFrame(columns=["status", "record_spikes", "backend",
                                                                   "nodes", "tasks_per_node",
                                                                   "threads_per_task"])), "empty")
    points = [(line.get_xdata()[0], line.get_ydata()[0]) for ax in fig.axes for line in ax.get_lines()
              if str(line.get_gid()).startswith("community ")]
    assert len(points) == 14
    assert sorted(x for x, _ in points) == sorted(e["rtf"] for e in raw["points"])
    on_energy_axis = sorted(y for ax in fig.axes if ax.get_label() == "rtf_energy" for line in ax.get_lines()
                            if str(line.get_gid()).startswith("community ") for y in line.get_ydata())
    assert on_energy_axis == sorted(e["esyn_uj"] for e in raw["points"] if e["esyn_uj"] is not None)
    key = next(ax for ax in fig.axes if ax.get_label() == "key")
    assert sum(str(t.get_gid()).startswith("community key ") for t in key.texts) == 14
    (header,) = [t.get_text() for t in key.texts if t.get_gid() == "community source"]
    assert str(raw["date"]) in header and "Senk et al. 2026" in header


def _write(tmp_path, data) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("change, where, says", [
    (lambda d: d["points"][8].update(rtf=-1), "points[8] (Heittmann 2022).rtf", "-1 is not allowed"),
    (lambda d: d["points"][0].update(drive="dc"), "points[0] (van Albada 2018).drive", "one of DC, Poisson"),
    (lambda d: d["points"][3].pop("nodes"), "points[3] (Knight & Nowotny 2018).nodes", "missing"),
    (lambda d: d["points"][2].update(speed=3), "points[2] (van Albada 2018).speed", "unknown key"),
    (lambda d: d.pop("date"), "date", "missing"),
    (lambda d: d["points"].append(dict(d["points"][0])), "points", "same study"),
])
def test_malformed_file_names_file_entry_and_key(raw, tmp_path, change, where, says):
    data = yaml.safe_load(yaml.safe_dump(raw))
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(CommunityDataError) as exc:
        read_community(path)
    assert str(exc.value).startswith(f"{path}: {where}:") and says in str(exc.value)


def test_command_writes_the_14_points_with_source_and_date(raw, tmp_path, capsys):
    out = tmp_path / "analysis" / "community.csv"
    assert community.main(["--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 14 and list(table["rtf"]) == [e["rtf"] for e in raw["points"]]
    assert (table["date"].astype(str) == str(raw["date"])).all()
    assert table["source"].str.contains("performance_data_raw.yaml").all()
    assert "14 published points" in capsys.readouterr().out
