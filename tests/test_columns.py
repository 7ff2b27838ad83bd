"""The run summary is declared once (spikescale.columns): runs.csv, the store, the phases and
the docs table agree with that declaration."""

from __future__ import annotations

import re

from helpers import REPO
from spikescale import columns, phases, store

UNIT_OF_SUFFIX = {"_s": "s", "_ms": "ms", "_mb": "MB", "_hz": "Hz", "_mhz": "MHz", "_j": "J", "_uj": "uJ", "_w": "W"}


def test_every_column_is_declared_once_with_a_known_source_kind_and_unit():
    assert len(set(columns.NAMES)) == len(columns.NAMES)
    for column in columns.COLUMNS:
        assert column.source in columns.SOURCES, column
        assert column.kind in columns.KINDS, column
        assert column.meaning.strip(), column
        named = [b.removesuffix(" (emulated)") for b in column.backends.split(", ")]
        assert column.backends == columns.ALL or set(named) <= {"nest", "brian2", "brian2genn", "genn", "spinnaker"}, column
        figure = re.sub(r"(_rank)?_(min|mean|max)$", "", column.name)
        suffix = next((s for s in sorted(UNIT_OF_SUFFIX, key=len, reverse=True) if figure.endswith(s)), None)
        # units live in names: a column with a unit suffix has that unit, and only then a unit
        assert column.unit == (UNIT_OF_SUFFIX[suffix] if suffix else ""), column


def test_runs_csv_is_the_declaration():
    assert store.RUNS_CSV_COLUMNS == columns.NAMES
    # every phase's wall-time column is a column, described as that phase
    for phase in phases.PHASES:
        assert columns.BY_NAME[phase.column].meaning.startswith(f"wall time of phase {phase.name}")


def test_a_row_has_exactly_the_declared_columns(tmp_path):
    """row_from_summary fills every declared column but those collect adds itself."""
    spec = {"run_id": "r", "campaign": "c", "backend": "nest", "machine": "local", "model": "pd14", "n_scaling": 0.1,
            "k_scaling": 0.1, "drive": "poisson", "t_presim_ms": 500.0, "t_sim_ms": 1000.0, "dt_ms": 0.1,
            "thalamic_input": False, "record_spikes": False, "seed": 1, "repetition": 0, "nodes": 1,
            "tasks_per_node": 1, "threads_per_task": 2}
    summary = {"run_id": "r", "campaign": "c", "status": "ok", "error": "", "started_at": "t0", "finished_at": "t1",
               **{f"spec.{k}": v for k, v in spec.items()}, "summary.t_sim_s": 3.0, "summary.platform": "cpu",
               "summary.emulated": False}
    path = tmp_path / "r.h5"
    path.write_bytes(b"x")
    row = store.row_from_summary(summary, path)
    collected_later = {c.name for c in columns.COLUMNS if c.source == "collect"} - {"validation", "file_sha256"}
    assert set(row) == set(columns.NAMES) - collected_later
    assert row["t_model_s"] == 1.0 and row["virtual_processes"] == 2 and row["t_sim_s"] == 3.0
    assert row["platform"] == "cpu" and row["emulated"] is False and row["rtf"] == ""  # absent: empty, not 0


def test_the_docs_table_is_generated_from_the_declaration():
    text = (REPO / "docs" / "hdf5-layout.md").read_text()
    begin, end = text.index(columns.DOC_BEGIN), text.index(columns.DOC_END)
    documented = text[begin + len(columns.DOC_BEGIN):end].strip()
    assert documented == columns.markdown_table().strip(), (
        "docs/hdf5-layout.md's runs.csv table differs from spikescale.columns: regenerate it with "
        "`.venvs/workflow/bin/python -m spikescale.columns`")
