"""Disturbed runs (spikescale.disturbance): the arithmetic from /proc text, the verdict, the
tables and figures that leave disturbed runs out of their means, the workflow's last line,
and a real NEST run beside real CPU hogs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import run_harness, run_spec
from spikescale import disturbance as D
from spikescale.schemas import complete

# /proc/stat as Linux writes it: user nice system idle iowait irq softirq steal guest guest_nice
STAT_BEFORE = """cpu  2000 0 400 9000 50 0 20 10 0 0
cpu0 1000 0 200 4500 25 0 10 5 0 0
cpu1 1000 0 200 4500 25 0 10 5 0 0
cpu2 50 0 10 9000 0 0 0 0 0 0
intr 123 0 0
ctxt 456
"""
# 10 s later (100 ticks/s): cpu0 and cpu1 fully busy (user, with some system, irq, softirq,
# steal and guest), cpu2 idle
STAT_AFTER = """cpu  3900 0 480 10000 50 5 35 20 0 0
cpu0 1950 0 235 4500 25 3 17 10 100 0
cpu1 1950 0 235 4500 25 2 18 10 0 0
cpu2 50 0 10 10000 0 0 0 0 0 0
intr 999 0 0
"""


def test_busy_ticks_per_cpu_count_user_nice_system_irq_softirq_steal_not_idle_nor_guest():
    before, after = D.parse_proc_stat(STAT_BEFORE), D.parse_proc_stat(STAT_AFTER)
    assert set(before) == {0, 1, 2}  # the aggregate 'cpu' line and intr/ctxt are not CPUs
    assert before[0] == 1000 + 200 + 10 + 5
    # guest (100 on cpu0) is already inside user: not counted twice
    assert D.busy_delta(before, after, [0, 1]) == {0: 1000, 1: 1000}
    assert D.busy_delta(before, after, [2]) == {2: 0}


def test_pid_stat_fields_are_read_after_the_last_parenthesis():
    # a command name with spaces and parentheses; utime stime cutime cstime = 300 40 7 3
    text = "4242 (my (odd) name) S 4000 4242 4000 0 -1 4194304 100 0 0 0 300 40 7 3 20 0 3 0 100 1 1\n"
    assert D.parse_pid_stat(text) == (4000, 350)


def test_the_process_tree_counts_living_descendants_only():
    stats = {100: (1, 500), 101: (100, 40), 102: (101, 7), 200: (1, 9999), 99: (1, 3)}
    # the run (100), its sampler (101) and a grandchild (102); not its parent or neighbours
    assert D.tree_ticks(stats, 100) == 547
    assert D.tree_ticks(stats, 101) == 47
    assert D.tree_ticks(stats, 12345) == 0  # gone


def test_a_one_core_hog_beside_a_two_thread_run_on_two_cpus_is_disturbed():
    """The case of issue 14: 2 CPUs fully busy for 10 s; the run's two threads got 1.33 CPUs,
    a one-core hog the rest."""
    busy = D.busy_delta(D.parse_proc_stat(STAT_BEFORE), D.parse_proc_stat(STAT_AFTER), [0, 1])
    busy_s = sum(busy.values()) / 100
    share = D.other_share(busy_s, own_s=13.33, wall_s=10.0, n_cpus=2)
    assert share == pytest.approx(0.3335)
    default = complete("machine", {})["disturbance"]["max_other_cpu_share"]
    assert D.is_disturbed(share, default) is True


def test_a_quiet_node_is_not_disturbed_and_accounting_jitter_is_not_negative():
    assert D.other_share(20.0, own_s=19.6, wall_s=10.0, n_cpus=2) == pytest.approx(0.02)
    assert D.is_disturbed(0.02, 0.1) is False
    assert D.other_share(20.0, own_s=20.3, wall_s=10.0, n_cpus=2) == 0.0  # per-CPU ticks lag per-process time
    assert D.is_disturbed(0.1, 0.1) is False  # above the threshold, not at it
    assert D.is_disturbed(None, 0.1) is None  # not measured: no verdict


def _rank(rank, node, cpus, busy_s, own_s, wall_s=10.0, freq=2500.0, load=0.5, unavailable=""):
    return {"attrs": {"rank": rank}, "disturbance": {
        "attrs": {"node": node, "wall_s": None if unavailable else wall_s, "own_cpu_s": None if unavailable else own_s,
                  "cpu_freq_mhz": freq, "cpu_freq_source": "test", "load_1min_at_start": load,
                  "unavailable": unavailable},
        "cpus": np.array(cpus), "cpu_busy_s": np.array(busy_s, dtype=float)}}


def test_ranks_on_one_node_are_not_each_others_disturbance():
    """Two ranks of one run, one CPU each, both busy: each one's CPU time is the run's own."""
    ranks = [_rank(0, "n1", [0], [10.0], 10.0), _rank(1, "n1", [1], [10.0], 9.9)]
    nodes = D.node_figures(ranks)
    assert nodes["n1"]["cpus"] == [0, 1] and nodes["n1"]["own_cpu_s"] == pytest.approx(19.9)
    assert nodes["n1"]["cpu_other_share"] == pytest.approx(0.1 / 20)
    # two ranks sharing both CPUs: each CPU's busy time counts once (the lowest rank's reading)
    shared = [_rank(0, "n1", [0, 1], [10.0, 10.0], 7.0), _rank(1, "n1", [0, 1], [9.9, 9.9], 7.0)]
    assert D.node_figures(shared)["n1"]["cpu_other_share"] == pytest.approx(6.0 / 20)


def test_the_run_is_as_disturbed_as_its_most_disturbed_node():
    ranks = [_rank(0, "n1", [0, 1], [10.0, 10.0], 19.8, freq=2400.0, load=0.2),
             _rank(1, "n2", [0, 1], [10.0, 10.0], 12.0, freq=2600.0, load=1.7)]
    s = D.run_summary(ranks, 0.1)
    assert s["cpu_other_share"] == pytest.approx(0.4) and s["disturbed"] is True
    assert s["cpu_freq_mhz"] == 2400.0 and s["load_1min_at_start"] == 1.7  # lowest frequency, highest load
    assert s["disturbance_max_other_cpu_share"] == 0.1 and s["disturbance_unavailable"] == ""
    per_node = json.loads(s["disturbance_nodes"])
    assert per_node["n1"]["cpu_other_share"] == pytest.approx(0.01) and per_node["n2"]["cpu_other_share"] == 0.4
    assert D.run_summary(ranks, 0.5)["disturbed"] is False


def test_a_node_that_did_not_measure_leaves_the_run_without_a_share_and_says_why():
    ranks = [_rank(0, "n1", [0], [10.0], 10.0), _rank(1, "n2", [0], [0.0], 0.0, unavailable="the run failed")]
    s = D.run_summary(ranks, 0.1)
    assert s["cpu_other_share"] is None and s["disturbed"] is None
    assert s["disturbance_unavailable"] == "n2: the run failed"
    assert D.run_summary([{"attrs": {"rank": 0}}], 0.1)["disturbance_unavailable"].startswith("no rank measured")


def test_cpu_frequency_from_cpufreq_else_cpuinfo_else_unavailable_with_the_reason(tmp_path):
    sys_cpu, proc = tmp_path / "sys", tmp_path / "proc"
    proc.mkdir()
    value, source = D.read_cpu_freq_mhz([0, 1], sys_cpu, proc)
    assert value is None and source.startswith("unavailable: no ") and "cpuinfo" in source
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2000.5\n\nprocessor\t: 1\ncpu MHz\t\t: 3000.5\n")
    assert D.read_cpu_freq_mhz([0, 1], sys_cpu, proc) == (2500.5, "/proc/cpuinfo cpu MHz, mean over the run's CPUs")
    assert D.read_cpu_freq_mhz([0, 7], sys_cpu, proc)[0] is None  # cpu 7 has no line: not guessed
    for cpu, khz in ((0, 1_200_000), (1, 3_400_000)):
        (sys_cpu / f"cpu{cpu}" / "cpufreq").mkdir(parents=True)
        (sys_cpu / f"cpu{cpu}" / "cpufreq" / "scaling_cur_freq").write_text(f"{khz}\n")
    value, source = D.read_cpu_freq_mhz([0, 1], sys_cpu, proc)
    assert value == 2300.0 and source.startswith("cpufreq scaling_cur_freq")


def test_the_watch_measures_the_window_from_proc_files(tmp_path):
    """A Watch reading a /proc laid out by the test: the window opens at create's start and
    closes at simulate's end; own time is this process's tree."""
    proc = tmp_path / "proc"
    me = proc / str(os.getpid())
    me.mkdir(parents=True)
    clock = iter([100.0, 110.0])

    def write(stat, own_ticks):
        (proc / "stat").write_text(stat)
        (me / "stat").write_text(f"{os.getpid()} (python) R 1 1 1 0 -1 0 0 0 0 0 {own_ticks} 0 0 0 20 0 1 0\n")

    watch = D.Watch("n1", proc=proc, sys_cpu=tmp_path / "sys", clock=lambda: next(clock))
    watch.cpus = [0, 1]  # as if the affinity mask were those two
    assert watch.tree()["attrs"]["unavailable"]  # nothing measured yet, and it says so
    write(STAT_BEFORE, 0)
    watch.phase_started("setup")  # outside the window: no snapshot
    watch.phase_started("create")
    write(STAT_AFTER, 1333)
    watch.phase_ended("presimulate")
    watch.phase_ended("simulate")
    tree = watch.tree()
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    assert tree["attrs"]["unavailable"] == "" and tree["attrs"]["wall_s"] == 10.0
    assert tree["attrs"]["own_cpu_s"] == pytest.approx(1333 * tick_s)
    assert list(tree["cpus"]) == [0, 1] and list(tree["cpu_busy_s"]) == pytest.approx([1000 * tick_s] * 2)
    assert tree["attrs"]["cpu_freq_source"].startswith("unavailable")  # no cpuinfo in this /proc


# -- tables and figures --------------------------------------------------------------

def _runs(rows):
    base = {"campaign": "c", "backend": "nest", "n_scaling": 0.1, "k_scaling": 0.1, "drive": "poisson",
            "t_model_s": 1.0, "nodes": 1, "tasks_per_node": 1, "status": "ok", "record_spikes": False,
            "seed": 1, "emulated": False, "platform": "cpu"}
    frame = pd.DataFrame([base | r for r in rows])
    frame["rtf"] = frame["t_sim_s"]
    return frame


def test_strong_scaling_leaves_disturbed_runs_out_of_the_means_and_counts_them():
    from spikescale.analysis.scaling import strong_scaling_table

    runs = _runs([{"threads_per_task": 1, "t_sim_s": 4.0, "disturbed": False},
                  {"threads_per_task": 1, "t_sim_s": 4.2, "disturbed": ""},  # not measured: kept
                  {"threads_per_task": 2, "t_sim_s": 2.0, "disturbed": False},
                  {"threads_per_task": 2, "t_sim_s": 39.0, "disturbed": True},
                  {"threads_per_task": 4, "t_sim_s": 30.0, "disturbed": True}])
    t = strong_scaling_table(runs).set_index("threads_per_task")
    assert list(t["n_runs"]) == [2, 1, 0] and list(t["n_runs_disturbed"]) == [0, 1, 1]
    assert t.loc[2, "rtf_mean"] == 2.0 and t.loc[2, "rtf_disturbed"] == "39"
    assert t.loc[2, "speedup_mean"] == pytest.approx(4.1 / 2.0)
    # every run at 4 threads disturbed: the point stays, without a mean
    assert np.isnan(t.loc[4, "rtf_mean"]) and np.isnan(t.loc[4, "speedup_mean"]) and t.loc[4, "t_sim_s_disturbed"] == "30"
    # on request they are averaged in
    every = strong_scaling_table(runs, include_disturbed=True).set_index("threads_per_task")
    assert every.loc[2, "rtf_mean"] == 20.5 and every.loc[2, "n_runs"] == 2 and every.loc[2, "n_runs_disturbed"] == 1


def test_a_disturbed_base_leaves_the_series_without_speedups_rather_than_a_wrong_base():
    from spikescale.analysis.scaling import strong_scaling_table, weak_scaling_table

    runs = _runs([{"threads_per_task": 1, "t_sim_s": 40.0, "disturbed": True},
                  {"threads_per_task": 2, "t_sim_s": 2.0, "disturbed": False}])
    t = strong_scaling_table(runs)
    assert t["speedup_mean"].isna().all() and list(t["n_runs"]) == [0, 1]
    runs["n_neurons"], runs["n_synapses"], runs["rate_mean_hz"] = 100, 1000, 3.0
    w = weak_scaling_table(runs)
    assert w["weak_efficiency_mean"].isna().all() and list(w["n_runs_disturbed"]) == [1, 0]


def test_rtf_energy_keeps_each_disturbed_runs_rtf_and_esyn_together():
    from spikescale.analysis.rtf_energy_table import rtf_energy_table

    runs = _runs([{"threads_per_task": 2, "t_sim_s": 2.0, "esyn_uj": 5.0, "energy_kind": "measured",
                   "disturbed": False},
                  {"threads_per_task": 2, "t_sim_s": 39.0, "esyn_uj": 80.0, "energy_kind": "measured",
                   "disturbed": True},
                  {"threads_per_task": 2, "t_sim_s": 12.0, "esyn_uj": np.nan, "energy_kind": "measured",
                   "disturbed": True}])
    row = rtf_energy_table(runs).iloc[0]
    assert row["n_runs"] == 1 and row["rtf_mean"] == 2.0 and row["esyn_uj_mean"] == 5.0
    assert row["n_runs_disturbed"] == 2
    assert row["rtf_disturbed"] == "39;12" and row["esyn_uj_disturbed"] == "80;nan"
    # an emulated board's modelled RTF and energy do not depend on the host's load: averaged in
    runs["emulated"], runs["rtf_modelled"] = True, 8.0
    modelled = rtf_energy_table(runs).iloc[0]
    assert modelled["rtf_kind"] == "modelled" and modelled["n_runs"] == 3 and modelled["n_runs_disturbed"] == 0


def test_figures_mark_each_disturbed_run_and_say_how_many_were_left_out(tmp_path):
    import matplotlib.pyplot as plt
    from spikescale.analysis.plots import save, strong_scaling_figure, weak_scaling_figure
    from spikescale.analysis.rtf_energy_plot import rtf_energy_figure
    from spikescale.analysis.rtf_energy_table import rtf_energy_table
    from spikescale.analysis.scaling import strong_scaling_table, weak_scaling_table

    runs = _runs([{"threads_per_task": 1, "t_sim_s": 4.0, "disturbed": False, "esyn_uj": 5.0},
                  {"threads_per_task": 2, "t_sim_s": 2.0, "disturbed": False, "esyn_uj": 5.0},
                  {"threads_per_task": 2, "t_sim_s": 39.0, "disturbed": True, "esyn_uj": 70.0},
                  {"threads_per_task": 4, "t_sim_s": 30.0, "disturbed": True, "esyn_uj": 60.0}])
    runs["energy_kind"], runs["n_neurons"], runs["n_synapses"], runs["rate_mean_hz"] = "measured", 100, 1000, 3.0
    for name, fig in (("strong", strong_scaling_figure(strong_scaling_table(runs), "t")),
                      ("weak", weak_scaling_figure(weak_scaling_table(runs), "t")),
                      ("rtf_energy", rtf_energy_figure(rtf_energy_table(runs), "t"))):
        marks = [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "disturbed"]
        assert sorted(float(y) for line in marks for y in line.get_ydata()) == (
            [60.0, 70.0] if name == "rtf_energy" else [30.0, 39.0]), name
        assert all(line.get_marker() == "x" for line in marks), name
        title = fig._suptitle.get_text()
        assert "2 disturbed run(s), marked x, left out of the means" in title, name
        assert "no mean at 1x1x4: every run there was disturbed" in title, name
        save(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    quiet = strong_scaling_figure(strong_scaling_table(runs[~runs["disturbed"]]), "t")
    assert "disturbed" not in quiet._suptitle.get_text()
    plt.close("all")


def test_the_csv_round_trip_keeps_the_marks(tmp_path):
    from spikescale.analysis.scaling import disturbed_values, strong_scaling_table

    runs = _runs([{"threads_per_task": 1, "t_sim_s": 4.0, "disturbed": "True"},
                  {"threads_per_task": 1, "t_sim_s": 5.0, "disturbed": "True"},
                  {"threads_per_task": 2, "t_sim_s": 2.0, "disturbed": "False"},
                  {"threads_per_task": 4, "t_sim_s": 1.0, "disturbed": "False"},
                  {"threads_per_task": 4, "t_sim_s": 7.0, "disturbed": "True"}])
    strong_scaling_table(runs).to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv")
    assert [disturbed_values(c) for c in back["rtf_disturbed"]] == [[4.0, 5.0], [], [7.0]]


# -- the workflow's last words ----------------------------------------------------------

def test_make_run_ends_by_naming_the_disturbed_runs(tmp_path):
    from spikescale.store import completion_line

    results = tmp_path / "c"
    results.mkdir()
    with h5py.File(results / "campaign.h5", "w") as fh:
        fh.attrs.update(n_runs=3, n_failed=0, rejected_files="[]")
    for run_id in ("a", "b", "c"):
        (results / "runs").mkdir(exist_ok=True)
        (results / "runs" / f"{run_id}.h5").write_bytes(b"")
    pd.DataFrame({"run_id": ["a", "b", "c"], "disturbed": [False, True, ""],
                  "cpu_other_share": [0.01, 0.48, ""]}).to_csv(results / "runs.csv", index=False)
    line = D.disturbed_line(results / "runs.csv")
    assert line.startswith("spikescale: 1 disturbed run(s)") and "b (cpu_other_share 0.48)" in line
    assert line.split("their means: ")[1].split(". ")[0] == "b (cpu_other_share 0.48)"  # neither a nor c
    closing = completion_line("c", results, ["a", "b", "c"]).splitlines()
    assert "is complete" in closing[0] and closing[1] == line
    pd.DataFrame({"run_id": ["a"], "disturbed": [False]}).to_csv(results / "runs.csv", index=False)
    assert D.disturbed_line(results / "runs.csv") == "" and "\n" not in completion_line("c", results, ["a", "b", "c"])
    assert D.disturbed_line(tmp_path / "no_such.csv") == ""


# -- for real: NEST beside CPU hogs ----------------------------------------------------

HOG = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); exec('while True: pass')"


@contextlib.contextmanager
def cpu_hogs(cpus):
    """One spinning process pinned to each of cpus, running (0.5 s head start) until the
    block ends; then killed and reaped."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG, str(cpu)]) for cpu in cpus]
    try:
        time.sleep(0.5)  # the hogs are spinning before the run starts
        assert all(h.poll() is None for h in hogs)
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


@pytest.mark.needs_nest
def test_a_real_nest_run_beside_cpu_hogs_is_flagged_disturbed(nest_python, tmp_path):
    """One hog pinned to each CPU the run may use, as a compiler beside a benchmark: the run's
    own record says it was disturbed, with others' share well above the threshold."""
    cpus = sorted(os.sched_getaffinity(0))
    with cpu_hogs(cpus):
        spec = run_spec(threads_per_task=min(2, len(cpus)))
        context = {"machine": {"disturbance": {"max_other_cpu_share": 0.15}}}
        proc = run_harness(spec, tmp_path / "run.h5", context)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from spikescale.record import read_record

    rec = read_record(tmp_path / "run.h5")
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    s = rec["summary"]["attrs"]
    # a hog per CPU against the run's threads: the hogs get about half of every CPU
    assert s["disturbance_max_other_cpu_share"] == 0.15  # the machine file's threshold reached the run
    assert s["cpu_other_share"] > 0.3 and s["disturbed"] is True, s
    assert s["disturbance_unavailable"] == ""
    mine = rec["ranks"]["0"]["disturbance"]
    assert list(mine["cpus"]) == cpus and mine["attrs"]["window"] == "create..simulate"
    assert mine["attrs"]["wall_s"] >= s["t_sim_s"] and mine["attrs"]["own_cpu_s"] > 0
    # the frequency is a number with its source, or unavailable with the reason; never guessed
    assert (s["cpu_freq_mhz"] != "") == (not s["cpu_freq_source"].startswith("unavailable")), s
    assert s["load_1min_at_start"] >= 0
    # the same measurement judged against a threshold above it: not disturbed
    assert D.run_summary([rec["ranks"]["0"]], 0.99)["disturbed"] is False


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_two_real_mpi_ranks_are_measured_as_one_node_beside_a_hog(nest_python, tmp_path):
    """Two ranks on this machine: the node's own CPU time is both ranks' (a rank is not the
    other's disturbance), each CPU's busy time is counted once, and the hogs are others."""
    from spikescale.record import read_record
    from test_mpi import MPI_PYTHON, mpirun

    cpus = sorted(os.sched_getaffinity(0))
    with cpu_hogs(cpus):
        proc = mpirun(MPI_PYTHON, run_spec(tasks_per_node=2), tmp_path / "run.h5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = read_record(tmp_path / "run.h5")
    s = rec["summary"]["attrs"]
    (node, figures), = json.loads(s["disturbance_nodes"]).items()
    ranks = [rec["ranks"][r]["disturbance"]["attrs"] for r in ("0", "1")]
    assert figures["ranks"] == 2 and figures["cpus"] == cpus and {r["node"] for r in ranks} == {node}
    assert figures["own_cpu_s"] == pytest.approx(sum(r["own_cpu_s"] for r in ranks))
    assert figures["busy_cpu_s"] <= figures["wall_s"] * len(cpus) * 1.05  # each CPU once, not once per rank
    assert s["cpu_other_share"] == figures["cpu_other_share"] > 0.3 and s["disturbed"] is True
