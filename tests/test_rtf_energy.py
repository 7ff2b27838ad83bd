"""RTF against energy per synaptic event: our points from a run table, the community's
published points beside them, honest about energy that is unavailable and about emulation."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from spikescale.analysis.community import COMMUNITY, community_table
from spikescale.analysis.plots import save
from spikescale.analysis.rtf_energy import main
from spikescale.analysis.rtf_energy_plot import rtf_energy_figure
from spikescale.analysis.rtf_energy_table import rtf_energy_table, short_reason
from spikescale.analysis.scaling import is_emulated

UNAVAILABLE = ("nvml: NVML could not start (NVML Shared Library Not Found): no NVIDIA driver or GPU here; "
               "rapl: no powercap interface (/sys/class/powercap does not exist)")


def run(**overrides):
    row = {"run_id": "r", "campaign": "test", "backend": "nest", "platform": "cpu", "emulated": False,
           "n_scaling": 0.1, "k_scaling": 0.1, "drive": "poisson", "t_model_s": 1.0, "seed": 1, "status": "ok",
           "nodes": 1, "tasks_per_node": 1, "threads_per_task": 1, "t_create_s": 0.1, "t_connect_s": 1.0,
           "t_construct_s": 1.1, "t_presim_s": 0.5, "t_sim_s": 1.5, "rtf": 1.5, "esyn_uj": np.nan,
           "energy_kind": "", "energy_source": "unavailable: " + UNAVAILABLE, "energy_unavailable": UNAVAILABLE}
    return row | overrides


def measured(**overrides):
    return run(energy_kind="measured", energy_source="measured: rapl package-0 on 1 node(s)", energy_unavailable="",
               **overrides)


@pytest.fixture
def runs():
    return pd.DataFrame([
        # nest: two seeds measured at 1 thread; at 2 threads one measured, one modelled (never averaged)
        measured(seed=1, rtf=2.0, esyn_uj=1.0),
        measured(seed=2, rtf=4.0, esyn_uj=3.0),
        measured(seed=1, threads_per_task=2, rtf=1.0, esyn_uj=0.5),
        run(seed=2, threads_per_task=2, rtf=1.2, esyn_uj=0.9, energy_kind="modelled",
            energy_source="modelled: model node on 1 node(s)", energy_unavailable=UNAVAILABLE),
        # energy unavailable: speed only
        run(seed=1, drive="dc", rtf=1.4), run(seed=2, drive="dc", rtf=1.6),
        run(seed=3, drive="dc", rtf=99.0, status="failed"),
        # an emulated platform (a future SpiNNaker emulation backend)
        run(backend="spinnaker", platform="spinnaker", emulated=True, rtf=30.0, esyn_uj=5.0, energy_kind="modelled",
            energy_source="modelled: model node on 1 node(s)", energy_unavailable=""),
    ])


def test_table_means_kinds_unavailable_and_emulated(runs):
    t = rtf_energy_table(runs)
    assert len(t) == 5  # failed run left out; measured and modelled at 2 threads stay apart
    nest1 = t[(t["backend"] == "nest") & (t["drive"] == "poisson") & (t["threads_per_task"] == 1)].iloc[0]
    assert nest1["energy_kind"] == "measured" and nest1["n_runs"] == 2 and nest1["n_runs_esyn"] == 2
    assert nest1["rtf_mean"] == 3.0 and nest1["rtf_sd"] == pytest.approx(np.std([2, 4], ddof=1))
    assert nest1["esyn_uj_mean"] == 2.0 and nest1["esyn_uj_sd"] == pytest.approx(np.std([1, 3], ddof=1))
    assert nest1["energy_source"] == "measured: rapl package-0 on 1 node(s)" and nest1["shape"] == "1x1x1"
    assert not nest1["full_scale"] and not nest1["emulated"]
    two = t[(t["backend"] == "nest") & (t["threads_per_task"] == 2)].set_index("energy_kind")
    assert sorted(two.index) == ["measured", "modelled"]
    assert two.loc["measured", "esyn_uj_mean"] == 0.5 and two.loc["modelled", "esyn_uj_mean"] == 0.9
    assert np.isnan(two.loc["modelled", "esyn_uj_sd"])  # one run: no spread
    dc = t[t["drive"] == "dc"].iloc[0]
    assert dc["energy_kind"] == "" and dc["n_runs"] == 2 and dc["rtf_mean"] == 1.5 and dc["n_runs_esyn"] == 0
    assert np.isnan(dc["esyn_uj_mean"])
    assert dc["energy_unavailable_short"] == "nvml: NVML could not start; rapl: no powercap interface"
    spinn = t[t["backend"] == "spinnaker"].iloc[0]
    assert bool(spinn["emulated"]) and spinn["energy_kind"] == "modelled" and spinn["esyn_uj_mean"] == 5.0


def test_emulated_column_missing_or_empty_means_not_emulated(runs):
    assert not is_emulated(runs.drop(columns="emulated")).any()
    values = pd.DataFrame({"emulated": [True, "True", "true", False, "", np.nan, "False"]})
    assert list(is_emulated(values)) == [True, True, True, False, False, False, False]
    t = rtf_energy_table(runs.drop(columns=["emulated", "energy_unavailable", "platform"]))
    assert not t["emulated"].any() and len(t) == 5


def test_short_reason():
    assert short_reason("rapl: permission denied reading /sys/class/powercap/intel-rapl:0/energy_uj (readable by "
                        "root only since Linux 5.10) (and 3 more zone(s) alike)") == "rapl: permission denied reading"
    assert short_reason("") == "no reason recorded"


def test_community_table_is_the_published_one():
    table = community_table()
    assert len(table) == 14 and table["esyn_uj"].isna().sum() == 1  # Knight 2021 published no energy
    knight = table[table["study"] == "Knight 2021"].iloc[0]
    assert knight["rtf"] == 0.70 and knight["drive"] == "Poisson"
    assert table["label"].is_unique  # every point can be told apart
    assert set(table["drive"]) == {"DC", "Poisson"}


def _axes(fig):
    return {ax.get_label(): ax for ax in fig.axes}


def _lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_figure_places_community_and_our_points(runs, tmp_path):
    fig = rtf_energy_figure(rtf_energy_table(runs), "test")
    axes = _axes(fig)
    main_ax, strip, key = axes["rtf_energy"], axes["energy_unavailable"], axes["key"]
    assert main_ax.get_xscale() == "log" and main_ax.get_yscale() == "log"
    assert "(\u00b5J)" in main_ax.get_ylabel() and "model s" in strip.get_xlabel()
    assert any(line.get_xdata()[0] == 1.0 and line.get_linestyle() == "--" for line in main_ax.get_lines())
    key_texts = [t.get_text() for t in key.texts]
    for i, r in enumerate(COMMUNITY, start=1):
        assert any(r.label in text for text in key_texts), r.label
        (point,) = _lines(main_ax, f"community {i}") + _lines(strip, f"community {i}")
        assert point.get_xdata()[0] == r.rtf
        if r.esyn_uj is None:  # cannot be placed on the energy axis: in the strip, with its number
            assert point.axes is strip and r.study == "Knight 2021"
        else:
            assert point.axes is main_ax and point.get_ydata()[0] == r.esyn_uj
        assert str(i) in [t.get_text() for t in point.axes.texts if t.get_gid() == f"community {i}"]

    ours_main = _lines(main_ax, "ours")
    placed = sorted((x, y) for line in ours_main for x, y in zip(line.get_xdata(), line.get_ydata()))
    assert placed == [(1.0, 0.5), (1.2, 0.9), (3.0, 2.0), (30.0, 5.0)]
    # energy unavailable: in the strip at its RTF, with the reason written beside it
    (unavailable,) = _lines(strip, "ours")
    assert list(unavailable.get_xdata()) == [1.5]
    assert "energy unavailable: nvml: NVML could not start; rapl: no powercap interface" in [
        t.get_text() for t in strip.texts]
    # emulated: hollow marker and "(emulated)" in its legend entry; others filled
    (emulated,) = [line for line in ours_main if 30.0 in line.get_xdata()]
    assert emulated.get_markerfacecolor() == "none" and "(emulated)" in emulated.get_label()
    for line in ours_main + [unavailable]:
        if line is not emulated:
            assert mcolors.to_hex(line.get_markerfacecolor()) == mcolors.to_hex(line.get_markeredgecolor())
    legend = [t.get_text() for t in key.get_legend().get_texts()]
    assert "spinnaker (emulated), Poisson drive, scale 0.1, energy modelled" in legend
    assert "nest on cpu, Poisson drive, scale 0.1, energy measured" in legend
    assert "nest on cpu, DC drive, scale 0.1, energy unavailable" in legend
    assert any("not comparable in absolute terms" in t.get_text() for t in key.texts)

    save(fig, tmp_path / "rtf_energy.png", tmp_path / "rtf_energy.pdf")
    assert (tmp_path / "rtf_energy.png").stat().st_size > 20_000 and (tmp_path / "rtf_energy.pdf").exists()


def test_figure_without_runs_still_shows_the_community(tmp_path):
    fig = rtf_energy_figure(rtf_energy_table(pd.DataFrame([run(status="failed")])), "empty")
    axes = _axes(fig)
    assert len(_lines(axes["rtf_energy"], "ours")) == 0
    assert sum(len(_lines(ax, f"community {i}")) for ax in fig.axes for i in range(1, 16)) == 14
    save(fig, tmp_path / "empty.png")


def test_command_line_writes_table_and_figure(runs, tmp_path):
    runs.to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "analysis"
    assert main(["--runs", str(tmp_path / "runs.csv"), "--table", str(out / "rtf_energy.csv"),
                 "--png", str(out / "rtf_energy.png"), "--pdf", str(out / "rtf_energy.pdf")]) == 0
    table = pd.read_csv(out / "rtf_energy.csv", keep_default_na=False, na_values=[""])
    assert len(table) == 5 and (out / "rtf_energy.png").stat().st_size > 20_000 and (out / "rtf_energy.pdf").exists()
    assert set(table["energy_kind"].fillna("")) == {"measured", "modelled", ""}


def test_runs_csv_without_any_energy_reads_cleanly(tmp_path):
    """On a machine without meters every energy column of runs.csv is empty (read back as
    NaN): the points keep their speed and the reason, with no warning."""
    import warnings

    pd.DataFrame([run(seed=1), run(seed=2, rtf=2.5)]).assign(energy_kind="", esyn_uj="").to_csv(
        tmp_path / "runs.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = rtf_energy_table(pd.read_csv(tmp_path / "runs.csv"))
    assert len(t) == 1 and t["energy_kind"].iloc[0] == "" and t["rtf_mean"].iloc[0] == 2.0
    assert t["energy_unavailable_short"].iloc[0] == "nvml: NVML could not start; rapl: no powercap interface"
