"""HDF5 run records: round trip, atomic writing, refusal of files that are not records."""

import os

import h5py
import numpy as np
import pytest

from spikescale import record as rec


def sample():
    return {
        "attrs": {"run_id": "r1", "status": "ok", "flag": True, "none": None, "n": 3, "x": 0.5,
                  "listy": [1, 2]},
        "summary": {"attrs": {"t_sim_s": 1.25, "rtf": 1.25}},
        "ranks": {"0": {"phases": {"simulate": {"attrs": {"wall_s": 1.25, "order": 4}}},
                        "spikes": {"L23E": {"senders": np.arange(5000, dtype=np.int64),
                                            "times_ms": np.linspace(0, 1, 5000)}}}},
        "traceback": "Traceback (most recent call last): ...",
    }


def test_round_trip(tmp_path):
    path = rec.write_record(tmp_path / "r1.h5", sample())
    back = rec.read_record(path)
    assert back["attrs"] == {"run_id": "r1", "status": "ok", "flag": True, "none": "", "n": 3, "x": 0.5,
                             "listy": "[1, 2]"}
    assert back["summary"]["attrs"] == {"t_sim_s": 1.25, "rtf": 1.25}
    assert back["ranks"]["0"]["phases"]["simulate"]["attrs"]["wall_s"] == 1.25
    np.testing.assert_array_equal(back["ranks"]["0"]["spikes"]["L23E"]["senders"], np.arange(5000))
    assert back["traceback"].startswith("Traceback")
    with h5py.File(path) as fh:  # plain h5py sees the documented layout
        assert fh.attrs["format"] == "spikescale-run"
        assert fh["ranks/0/spikes/L23E/times_ms"].shape == (5000,)


def test_read_summary_is_flat(tmp_path):
    path = rec.write_record(tmp_path / "r1.h5", sample())
    s = rec.read_summary(path)
    assert s["run_id"] == "r1" and s["summary.t_sim_s"] == 1.25


def test_no_temporary_left_and_no_partial_file_on_error(tmp_path):
    bad = sample()
    bad["ranks"]["0"]["broken"] = object()  # cannot be stored: the write fails half-way
    with pytest.raises(TypeError):
        rec.write_record(tmp_path / "r1.h5", bad)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_is_atomic_replace(tmp_path):
    path = rec.write_record(tmp_path / "r1.h5", sample())
    inode_before = os.stat(path).st_ino
    rec.write_record(path, {**sample(), "attrs": {"run_id": "r1", "status": "failed"}})
    assert rec.read_record(path)["attrs"]["status"] == "failed"
    assert os.stat(path).st_ino != inode_before  # a new file was renamed into place


def test_files_that_are_not_records_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["x"] = 1
    with pytest.raises(rec.RecordError, match="not a spikescale run record"):
        rec.read_record(other)
    truncated = tmp_path / "trunc.h5"
    data = rec.write_record(tmp_path / "full.h5", sample()).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(rec.RecordError, match="unreadable"):
        rec.read_summary(truncated)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(rec.RecordError):
        rec.read_record(garbage)


def test_the_json_summary_follows_every_change(tmp_path):
    """collect reads a record's summary from one JSON attribute: a change made in place
    (an attempt's status and reason) must show there, or an attempt would be missed."""
    from spikescale.record import SUMMARY_ATTR, read_summary, update_attrs

    path = rec.write_record(tmp_path / "r.h5", {"attrs": {"run_id": "a", "status": "ok", "error": ""},
                                            "spec": {"attrs": {"seed": 3}}, "summary": {"attrs": {"t_sim_s": 1.5}}})
    with h5py.File(path, "r") as fh:
        assert SUMMARY_ATTR in fh.attrs
    assert read_summary(path)["spec.seed"] == 3 and read_summary(path)["summary.t_sim_s"] == 1.5
    update_attrs(path, {"status": "failed", "error": "cancelled", "ended_by": '{"slurm_job_id": "7"}'})
    summary = read_summary(path)
    assert summary["status"] == "failed" and summary["error"] == "cancelled" and "7" in summary["ended_by"]
    fast = read_summary(path)
    with h5py.File(path, "r+") as fh:  # without it, every attribute is read: the same answer
        del fh.attrs[SUMMARY_ATTR]
    assert read_summary(path) == fast
