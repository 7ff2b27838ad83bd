"""Shared fixtures: the NEST environment, and a small campaign for each test to edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import NEST_PYTHON, REPO, TINY_EXPERIMENT, TINY_MODEL, write_yaml


LEDGER = REPO / ".test-results" / "faults.jsonl"


@pytest.fixture(scope="session", autouse=True)
def fault_ledger():
    """A fresh ledger of injected faults for this session (tests/reliability_figures.py)."""
    import os

    path = Path(os.environ.setdefault("SPIKESCALE_FAULT_LEDGER", str(LEDGER)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def nest_python() -> Path:
    if not NEST_PYTHON.exists():
        pytest.fail(f"{NEST_PYTHON} is missing: run the tests through `make test`, which builds it")
    return NEST_PYTHON


@pytest.fixture
def config_dir(tmp_path) -> Path:
    """A copy of config/ plus a tiny model and experiment, for tests to edit."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    write_yaml(target / "model" / "tiny.yaml", TINY_MODEL)
    write_yaml(target / "experiment" / "tiny.yaml", TINY_EXPERIMENT)
    return target
