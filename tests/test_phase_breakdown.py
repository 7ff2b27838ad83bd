"""NEST's detailed timers in the record and the phase-breakdown figure drawn from them: a
real MPI NEST run (make nest-mpi, built with -Dwith-detailed-timers=ON) on 2 ranks x 2
threads, a real run of the PyPI wheel (no detailed timers), both collected into one
campaign, and the table and figure made from that campaign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import run_harness, run_spec
from spikescale.analysis import phase_breakdown as pb
from spikescale.load import load_runs
from spikescale.record import read_record
from spikescale.store import collect
from test_mpi import MPI_PYTHON, mpirun

# Per-thread in NEST 3.10 (StopwatchParallelism::Threaded) and only with detailed timers.
THREADED_DETAILED = ("time_update", "time_deliver_spike_data", "time_omp_synchronization_simulation")
# The master thread's only (scalars), and only with detailed timers.
MASTER_DETAILED = ("time_gather_spike_data", "time_collocate_spike_data", "time_communicate_spike_data")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Two real runs: the MPI build on 2 ranks x 2 threads, the PyPI wheel on 1 x 2."""
    folder = tmp_path_factory.mktemp("runs")
    mpi = run_spec(tasks_per_node=2, threads_per_task=2)
    proc = mpirun(MPI_PYTHON, mpi, folder / f"{mpi['run_id']}.h5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheel = run_spec(threads_per_task=2)
    proc = run_harness(wheel, folder / f"{wheel['run_id']}.h5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder, mpi["run_id"], wheel["run_id"]


@pytest.fixture(scope="module")
def campaign(records):
    folder, mpi_id, wheel_id = records
    runs = collect(sorted(folder.glob("*.h5")), "test", folder / "campaign.h5", folder / "runs.csv")
    return folder, runs.set_index("run_id"), mpi_id, wheel_id


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_mpi_record_holds_every_detailed_timer_per_thread_and_rank(records):
    folder, mpi_id, _ = records
    rec = read_record(folder / f"{mpi_id}.h5")
    assert rec["attrs"]["status"] == "ok" and set(rec["ranks"]) == {"0", "1"}
    assert rec["provenance"]["packages"]["attrs"]["nest_detailed_timers"] is True
    for rank in ("0", "1"):
        simulate = rec["ranks"][rank]["kernel_timers"]["simulate"]
        for timer in THREADED_DETAILED:  # one value per thread of the rank, wall and CPU time
            for name in (timer, f"{timer}_cpu"):
                assert np.asarray(simulate[name]).shape == (2,), (rank, name)
        assert (np.asarray(simulate["time_update"]) > 0).all()
        for timer in MASTER_DETAILED:
            assert np.ndim(simulate["attrs"][timer]) == 0 and simulate["attrs"][timer] >= 0
        # communicate contains its two pieces; the loop contains all of them
        attrs = simulate["attrs"]
        assert attrs["time_collocate_spike_data"] + attrs["time_communicate_spike_data"] <= attrs["time_gather_spike_data"]
        assert attrs["time_gather_spike_data"] < attrs["time_simulate"]
        assert max(simulate["time_update"]) < attrs["time_simulate"]
    # the presimulation's timers are apart from the simulation's (NEST resets them per Simulate)
    assert "time_update" in rec["ranks"]["0"]["kernel_timers"]["presimulate"]


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_runs_csv_says_which_nest_had_detailed_timers(campaign):
    folder, runs, mpi_id, wheel_id = campaign
    assert runs.loc[mpi_id, "nest_detailed_timers"] == True  # numpy bools, not the text "True"
    assert runs.loc[wheel_id, "nest_detailed_timers"] == False
    text = pd.read_csv(folder / "runs.csv", dtype=str).set_index("run_id")["nest_detailed_timers"]
    assert text[mpi_id] == "True" and text[wheel_id] == "False"
    stored = load_runs(folder / "campaign.h5").set_index("run_id")["nest_detailed_timers"]
    assert stored[mpi_id] == True and stored[wheel_id] == False


def _expected(record: dict, timer: str) -> float:
    """What the table must hold for one run: mean over threads, then over ranks."""
    values = []
    for rank in record["ranks"].values():
        simulate = rank["kernel_timers"]["simulate"]
        values.append(np.mean(simulate[timer]) if timer in simulate else simulate["attrs"][timer])
    return float(np.mean(values))


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_the_table_is_the_recorded_timers_aggregated(campaign, tmp_path):
    folder, _, mpi_id, _ = campaign
    assert pb.main(["--runs", str(folder / "runs.csv"), "--campaign-h5", str(folder / "campaign.h5"),
                    "--table", str(tmp_path / "pb.csv"), "--png", str(tmp_path / "pb.png"),
                    "--include-disturbed"]) == 0  # a busy test machine may disturb these runs
    table = pd.read_csv(tmp_path / "pb.csv", keep_default_na=True)
    assert (tmp_path / "pb.png").stat().st_size > 0
    assert list(table.columns) == pb.COLUMNS and len(table) == 2
    detailed = table[table["detailed_timers"]].iloc[0]
    assert detailed["shape"] == "1x2x2" and detailed["n_runs"] == 1
    record = read_record(folder / f"{mpi_id}.h5")
    for part in pb.PARTS:
        assert detailed[f"{part.name}_s"] == pytest.approx(_expected(record, part.timer), rel=1e-5)
    assert detailed["nest_simulate_s"] == pytest.approx(_expected(record, "time_simulate"), rel=1e-5)
    t_sim = record["summary"]["attrs"]["t_sim_s_rank_mean"]
    assert detailed["t_sim_s"] == pytest.approx(t_sim, rel=1e-5)
    named = sum(detailed[f"{p.name}_s"] for p in pb.PARTS)
    assert detailed["other_s"] == pytest.approx(t_sim - named, rel=1e-4, abs=1e-6)
    assert named <= detailed["nest_simulate_s"] * 1.05  # the parts are inside NEST's loop
    assert pd.isna(detailed["note"])

    plain = table[~table["detailed_timers"]].iloc[0]
    assert plain["shape"] == "1x1x2"
    assert all(pd.isna(plain[f"{p.name}_s"]) for p in pb.PARTS)  # unavailable, not 0
    assert plain["other_s"] == pytest.approx(plain["t_sim_s"])  # all of t_sim, unresolved
    assert plain["note"] == pb.NO_DETAILED_NOTE
    assert "-Dwith-detailed-timers" in plain["note"] and "PyPI wheel" in plain["note"]


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_the_figure_states_the_missing_timers(campaign):
    folder, _, _, wheel_id = campaign
    full = pd.read_csv(folder / "runs.csv")
    with_both = pb.phase_breakdown_table(full, folder / "campaign.h5", include_disturbed=True)
    texts = [t.get_text() for t in pb.phase_breakdown_figure(with_both, "t").texts]
    assert any(pb.NO_DETAILED_NOTE in t and "1x1x2" in t for t in texts), texts
    only_detailed = pb.phase_breakdown_table(full[full["run_id"] != wheel_id], folder / "campaign.h5",
                                             include_disturbed=True)
    texts = [t.get_text() for t in pb.phase_breakdown_figure(only_detailed, "t").texts]
    assert not any("no detailed timers" in t for t in texts), texts
    fig = pb.phase_breakdown_figure(only_detailed, "t")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {p.label for p in pb.PARTS} <= set(labels)


def test_a_campaign_without_nest_runs_gives_an_empty_table(tmp_path):
    runs = pd.DataFrame({"run_id": ["a"], "backend": ["brian2"], "status": ["ok"], "record_spikes": [False]})
    table = pb.phase_breakdown_table(runs, tmp_path / "absent.h5")  # never opened: no NEST run to read
    assert table.empty and list(table.columns) == pb.COLUMNS
    fig = pb.phase_breakdown_figure(table, "t")
    assert any("no successful NEST runs" in t.get_text() for ax in fig.axes for t in ax.texts)
