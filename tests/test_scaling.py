"""Strong-scaling arithmetic on known numbers."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from spikescale.analysis.scaling import shape_label, strong_scaling_table


def runs_frame(rows):
    base = {"backend": "nest", "n_scaling": 0.1, "k_scaling": 0.1, "drive": "poisson", "nodes": 1,
            "tasks_per_node": 1, "status": "ok", "t_create_s": 0.1, "t_connect_s": 1.0, "t_construct_s": 1.1,
            "t_presim_s": 1.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_speedup_and_efficiency_on_known_numbers():
    runs = runs_frame([
        {"threads_per_task": 1, "t_sim_s": 8.0, "rtf": 8.0, "seed": 1},
        {"threads_per_task": 1, "t_sim_s": 12.0, "rtf": 12.0, "seed": 2},
        {"threads_per_task": 2, "t_sim_s": 5.0, "rtf": 5.0, "seed": 1},
        {"threads_per_task": 2, "t_sim_s": 5.0, "rtf": 5.0, "seed": 2},
        {"threads_per_task": 4, "t_sim_s": 4.0, "rtf": 4.0, "seed": 1},
    ])
    t = strong_scaling_table(runs).set_index("threads_per_task")
    assert t.loc[1, "t_sim_s_mean"] == 10.0
    assert t.loc[1, "t_sim_s_sd"] == pytest.approx(np.std([8, 12], ddof=1))
    assert t.loc[2, "speedup_mean"] == 2.0  # 10 / 5
    assert t.loc[2, "efficiency_mean"] == 1.0  # 2 / 2
    assert t.loc[4, "speedup_mean"] == 2.5
    assert t.loc[4, "efficiency_mean"] == 0.625
    assert np.isnan(t.loc[4, "speedup_sd"])  # one run: no spread
    assert t.loc[1, "speedup_mean"] == pytest.approx(np.mean([10 / 8, 10 / 12]))
    assert list(t["virtual_processes"]) == [1, 2, 4]
    assert list(t["n_runs"]) == [2, 2, 1]


def test_failed_runs_are_left_out():
    runs = runs_frame([
        {"threads_per_task": 1, "t_sim_s": 10.0, "rtf": 10.0},
        {"threads_per_task": 2, "t_sim_s": np.nan, "rtf": np.nan, "status": "failed"},
        {"threads_per_task": 2, "t_sim_s": 5.0, "rtf": 5.0},
    ])
    t = strong_scaling_table(runs)
    assert list(t["n_runs"]) == [1, 1]
    assert t["speedup_mean"].iloc[1] == 2.0


def test_base_is_per_backend_and_model():
    runs = pd.concat([
        runs_frame([{"threads_per_task": 1, "t_sim_s": 10.0, "rtf": 10.0},
                    {"threads_per_task": 2, "t_sim_s": 5.0, "rtf": 5.0}]),
        runs_frame([{"threads_per_task": 2, "t_sim_s": 30.0, "rtf": 30.0, "n_scaling": 0.2},
                    {"threads_per_task": 4, "t_sim_s": 20.0, "rtf": 20.0, "n_scaling": 0.2}]),
    ])
    t = strong_scaling_table(runs)
    big = t[t["n_scaling"] == 0.2].set_index("threads_per_task")
    assert big.loc[2, "speedup_mean"] == 1.0
    assert big.loc[4, "speedup_mean"] == 1.5
    assert big.loc[4, "efficiency_mean"] == 0.75


def test_empty_table_when_nothing_succeeded():
    runs = runs_frame([{"threads_per_task": 1, "t_sim_s": np.nan, "rtf": np.nan, "status": "failed"}])
    assert strong_scaling_table(runs).empty


def test_shape_label():
    assert shape_label(2, 4, 8) == "2x4x8"


def test_weak_scaling_efficiency_on_known_numbers(tmp_path):
    from spikescale.analysis.plots import save, weak_scaling_figure
    from spikescale.analysis.scaling import weak_scaling_table

    runs = runs_frame([
        {"threads_per_task": 1, "n_scaling": 0.05, "t_sim_s": 4.0, "rtf": 4.0, "seed": 1, "rate_mean_hz": 3.0,
         "n_neurons": 3856, "n_synapses": 1e6},
        {"threads_per_task": 1, "n_scaling": 0.05, "t_sim_s": 6.0, "rtf": 6.0, "seed": 2, "rate_mean_hz": 3.2,
         "n_neurons": 3856, "n_synapses": 1e6},
        {"threads_per_task": 2, "n_scaling": 0.1, "t_sim_s": 6.25, "rtf": 6.25, "seed": 1, "rate_mean_hz": 2.5,
         "n_neurons": 7712, "n_synapses": 2e6},
        {"threads_per_task": 2, "n_scaling": 0.1, "t_sim_s": 99.0, "rtf": 99.0, "seed": 2, "status": "failed"},
    ])
    t = weak_scaling_table(runs).set_index("threads_per_task")
    assert list(t["n_scaling"]) == [0.05, 0.1] and list(t["n_runs"]) == [2, 1]  # the failed run is left out
    assert t.loc[1, "weak_efficiency_mean"] == pytest.approx(np.mean([5 / 4, 5 / 6]))  # against the mean base time
    assert t.loc[2, "weak_efficiency_mean"] == 0.8  # 5 / 6.25: the ideal is 1, a flat time
    assert t.loc[1, "rate_mean_hz_mean"] == pytest.approx(3.1) and t.loc[2, "rate_mean_hz_mean"] == 2.5
    save(weak_scaling_figure(weak_scaling_table(runs), "test"), tmp_path / "weak.png", tmp_path / "weak.pdf")
    assert (tmp_path / "weak.png").stat().st_size > 10_000 and (tmp_path / "weak.pdf").exists()


def test_strong_scaling_figure_shows_each_backend_as_its_own_series(tmp_path):
    from spikescale.analysis.plots import save, strong_scaling_figure

    runs = pd.concat([
        runs_frame([{"threads_per_task": t, "t_sim_s": 8.0 / t, "rtf": 8.0 / t, "seed": s} for t in (1, 2, 4)
                    for s in (1, 2)]),
        runs_frame([{"backend": "genn", "threads_per_task": t, "t_sim_s": 1.0 / t, "rtf": 1.0 / t, "seed": s}
                    for t in (2, 4) for s in (1, 2)]),
    ])
    table = strong_scaling_table(runs)
    fig = strong_scaling_figure(table, "two backends")
    ax_t, ax_s, ax_e, ax_rtf = fig.axes
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["genn\n1x1x2", "genn\n1x1x4", "nest\n1x1x1",
                                                              "nest\n1x1x2", "nest\n1x1x4"]
    # one RTF line per backend over its own bars only, never joined across backends
    rtf = {c.get_label(): c.lines[0] for c in ax_rtf.containers}
    assert sorted(rtf) == ["real-time factor: genn", "real-time factor: nest"]
    assert list(rtf["real-time factor: genn"].get_xdata()) == [0, 1]
    assert list(rtf["real-time factor: genn"].get_ydata()) == [0.5, 0.25]
    assert list(rtf["real-time factor: nest"].get_xdata()) == [2, 3, 4]
    assert rtf["real-time factor: genn"].get_markerfacecolor() != rtf["real-time factor: nest"].get_markerfacecolor()
    # speedup and efficiency: a line and a colour per backend, each against its own base
    for ax in (ax_s, ax_e):
        lines = {c.get_label(): c.lines[0] for c in ax.containers}
        assert sorted(lines) == ["genn", "nest"]
        assert lines["genn"].get_color() != lines["nest"].get_color()
        assert list(lines["genn"].get_xdata()) == [2, 4] and list(lines["nest"].get_xdata()) == [1, 2, 4]
    speedup = {c.get_label(): c.lines[0] for c in ax_s.containers}
    assert list(speedup["genn"].get_ydata()) == [1.0, 2.0] and list(speedup["nest"].get_ydata()) == [1.0, 2.0, 4.0]
    ideals = sorted(tuple(line.get_xdata()) for line in ax_s.get_lines() if line.get_linestyle() == "--")
    assert ideals == [(1, 2, 4), (2, 4)]
    save(fig, tmp_path / "strong.png")
    assert (tmp_path / "strong.png").stat().st_size > 10_000


def test_strong_scaling_figure_one_backend_keeps_plain_labels():
    from spikescale.analysis.plots import strong_scaling_figure

    runs = runs_frame([{"threads_per_task": t, "t_sim_s": 8.0 / t, "rtf": 8.0 / t} for t in (1, 2)])
    ax_t, ax_s, _, ax_rtf = strong_scaling_figure(strong_scaling_table(runs), "one").axes
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["1x1x1", "1x1x2"]
    assert [c.get_label() for c in ax_rtf.containers] == ["real-time factor"]
    assert [c.get_label() for c in ax_s.containers] == ["nest"]


def test_analysis_speaks_the_runs_phases():
    """The analysis's phases are spikescale.phases's: a colour for each stacked phase, a
    table metric for each, the beNNch memory columns read at named phases."""
    from spikescale import phases
    from spikescale.analysis import style
    from spikescale.analysis.bennch_export import MEMORY
    from spikescale.analysis.scaling import METRICS

    assert list(style.PHASE_COLORS) == list(phases.STACKED)
    assert len(set(style.PHASE_COLORS.values())) == len(style.PHASE_COLORS)
    assert [m for m in METRICS if m in phases.COLUMNS] == [phases.column(p) for p in phases.STACKED]
    assert set(MEMORY.values()) <= set(phases.NAMES)


def test_stacked_bars_are_labelled_and_coloured_by_phase():
    from spikescale import phases
    from spikescale.analysis import style
    from matplotlib.container import BarContainer

    from spikescale.analysis.plots import strong_scaling_figure

    runs = runs_frame([{"threads_per_task": 1, "t_sim_s": 8.0, "rtf": 8.0, "t_compile_s": 2.0, "t_load_s": 0.5}])
    ax_t = strong_scaling_figure(strong_scaling_table(runs), "phases").axes[0]
    bars = {c.get_label(): c.patches[0].get_facecolor() for c in ax_t.containers if isinstance(c, BarContainer)}
    assert list(bars) == [phases.BY_NAME[p].label for p in phases.STACKED]
    assert [mcolors.to_hex(c) for c in bars.values()] == [style.PHASE_COLORS[p].lower() for p in phases.STACKED]


def test_software_variants_are_series_of_their_own():
    """Runs of one backend from two software variants: two series (rows per shape), each
    named by its variant; a campaign of one variant keeps the plain backend name."""
    from spikescale.analysis.scaling import strong_scaling_table

    def runs(variants):
        rows = [{"backend": "nest", "variant": v, "status": "ok", "record_spikes": False, "n_scaling": 0.1,
                 "k_scaling": 0.1, "drive": "poisson", "nodes": 1, "tasks_per_node": 1, "threads_per_task": t,
                 "seed": seed, "repetition": 0, "t_sim_s": t_sim / t, "rtf": t_sim / t, "t_model_s": 1.0}
                for v, t_sim in variants.items() for t in (1, 2) for seed in (1, 2)]
        return pd.DataFrame(rows)

    table = strong_scaling_table(runs({"default": 4.0, "nest-mpi": 8.0}))
    assert sorted(table["backend"].unique()) == ["nest [default]", "nest [nest-mpi]"]
    assert len(table) == 4
    mpi = table[table["backend"] == "nest [nest-mpi]"].set_index("threads_per_task")
    assert mpi.loc[1, "t_sim_s_mean"] == pytest.approx(8.0) and mpi.loc[2, "speedup_mean"] == pytest.approx(2.0)
    assert list(strong_scaling_table(runs({"default": 4.0}))["backend"].unique()) == ["nest"]
