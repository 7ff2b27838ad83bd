"""Shared fixtures (the simulators' interpreters, a small campaign for each test to edit) and
the test tiers (docs/testing.md).

A test says what it needs with a marker (pyproject.toml lists them): needs_nest, needs_brian2,
needs_genn, needs_spinnaker, needs_mpi, needs_root, slurm. Before it runs, NEEDS below checks
each of its needs on this machine. A need that is missing skips the test, with what is
missing and the command that provides it; in CI (CI set) it fails the test instead, since CI
runs everything (`make test` builds every need but root's and SLURM's, GeNN included). In CI
a session that skipped anything, for whatever reason, ends with a non-zero exit status.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import NEST_PYTHON, REPO, TINY_EXPERIMENT, TINY_MODEL, write_yaml
from spikescale.software import genn_path


LEDGER = REPO / ".test-results" / "faults.jsonl"
VENVS = REPO / ".venvs"


# -- what a test needs, and whether this machine has it --------------------------------------

@dataclass(frozen=True)
class Need:
    """missing(): None when this machine has it, else what is missing; how: what provides it."""

    missing: Callable[[], str | None]
    how: str


def venv_missing(name: str, stamp: str = ".installed") -> str | None:
    """An environment counts once make finished it (its stamp), not when bin/python appears."""
    if (VENVS / name / stamp).is_file():
        return None
    return f".venvs/{name} is not built (no {stamp})"


def commands_missing(*commands: str) -> str | None:
    absent = [c for c in commands if shutil.which(c) is None]
    return f"no {', '.join(absent)} on PATH" if absent else None


def genn_missing() -> str | None:
    """What `make genn` builds: brian2genn's environment and GeNN 4 where a brian2genn run
    finds it (GENN_PATH, else the cache: spikescale.software.genn_path), and .venvs/genn with
    PyGeNN (its stamps are written only after its self-test passed)."""
    problems = [venv_missing("brian2genn"), venv_missing("genn")]
    path, source = genn_path({})
    if not (Path(path) / "bin" / "genn-buildmodel.sh").is_file():
        problems.append(f"no GeNN 4.x at {path} ({source})")
    problems = [p for p in problems if p]
    return "; ".join(problems) if problems else None


def root_missing() -> str | None:
    return None if os.geteuid() == 0 else f"not root (uid {os.geteuid()})"


NEEDS = {
    "needs_nest": Need(lambda: venv_missing("nest"), "make env"),
    "needs_brian2": Need(lambda: venv_missing("brian2"), "make env"),
    "needs_spinnaker": Need(lambda: venv_missing("spinnaker"), "make env"),
    "needs_mpi": Need(lambda: venv_missing("nest-mpi", ".spikescale-selftest-ok") or commands_missing("mpirun"),
                      "make nest-mpi"),
    "needs_genn": Need(genn_missing, "make genn"),
    "needs_root": Need(root_missing, "run the tests as root, as CI does"),
    # tests/slurm_cluster.py starts the Debian packages' daemons (accounting: slurmdbd, MariaDB)
    "slurm": Need(lambda: commands_missing("munged", "slurmctld", "slurmd", "sbatch", "slurmdbd", "mariadbd"),
                  "make system-deps as root (slurm-wlm, munge, slurmdbd, mariadb-server)"),
}
# Needs that may skip in CI: none (`make test` builds GeNN too). Kept as the one place to name
# a need CI cannot have, should there be one again.
MAY_SKIP_IN_CI: set[str] = set()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def decide(marker: str, missing: str | None, ci: bool) -> tuple[str, str] | None:
    """For a test that carries marker: None to run it, else ("skip" or "fail", reason)."""
    if missing is None:
        return None
    reason = f"{marker}: {missing}; to get it: {NEEDS[marker].how}"
    if marker in MAY_SKIP_IN_CI:
        return "skip", reason + " (skips in CI too)"
    if ci:
        return "fail", reason + "; in CI every test must run"
    return "skip", reason


# Fixtures that hand a test a simulator's interpreter, and the marker such a test must carry.
FIXTURE_NEEDS = {"nest_python": "needs_nest", "brian2_python": "needs_brian2",
                 "spinnaker_python": "needs_spinnaker", "mpi_python": "needs_mpi",
                 "genn_python": "needs_genn", "brian2genn_python": "needs_genn"}


def pytest_collection_modifyitems(config, items):
    """A test that uses a simulator's fixture without its marker would fail in the quick tier."""
    unmarked = [f"{item.nodeid} uses {fixture} but is not marked {marker}"
                for item in items for fixture, marker in FIXTURE_NEEDS.items()
                if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None]
    if unmarked:
        raise pytest.UsageError("tests without the marker of what they need:\n  " + "\n  ".join(unmarked))


_checked: dict[str, str | None] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for marker, need in NEEDS.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _checked:
            _checked[marker] = need.missing()
        outcome = decide(marker, _checked[marker], in_ci())
        if outcome and outcome[0] == "fail":
            pytest.fail(outcome[1], pytrace=False)
        if outcome:
            pytest.skip(outcome[1])


# -- in CI, nothing may skip ------------------------------------------------------------------

_skipped: list[tuple[str, set, str]] = []  # (test, its keywords, reason)


def pytest_sessionstart(session):
    _skipped.clear()


def _note_skip(report, keywords) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        _skipped.append((report.nodeid, set(keywords), reason))


def pytest_runtest_logreport(report):
    _note_skip(report, report.keywords)


def pytest_collectreport(report):
    _note_skip(report, ())  # a whole module skipped at collection (importorskip, skip(allow_module_level))


def ci_skip_problems(skipped) -> list[str]:
    """The skips CI does not allow: all but those of tests marked with a need of MAY_SKIP_IN_CI."""
    return [f"{test}: {reason}" for test, keywords, reason in skipped if not keywords & MAY_SKIP_IN_CI]


def pytest_sessionfinish(session, exitstatus):
    if in_ci() and ci_skip_problems(_skipped) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    problems = ci_skip_problems(_skipped) if in_ci() else []
    if problems:
        terminalreporter.section("skipped in CI", sep="=", red=True, bold=True)
        terminalreporter.line(f"CI runs every test; {len(problems)} skipped, "
                              "so this session fails:", red=True)
        for problem in problems:
            terminalreporter.line(f"  {problem}")


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def fault_ledger():
    """A fresh ledger of injected faults for this session (tests/reliability_figures.py)."""
    path = Path(os.environ.setdefault("SPIKESCALE_FAULT_LEDGER", str(LEDGER)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def nest_python() -> Path:
    """NEST's interpreter (a test that uses it is marked needs_nest)."""
    return NEST_PYTHON


@pytest.fixture(scope="session")
def genn_python() -> Path:
    """.venvs/genn's interpreter, with PyGeNN (a test that uses it is marked needs_genn)."""
    return VENVS / "genn" / "bin" / "python"


@pytest.fixture(scope="session")
def brian2genn_python() -> Path:
    """.venvs/brian2genn's interpreter (a test that uses it is marked needs_genn)."""
    return VENVS / "brian2genn" / "bin" / "python"


@pytest.fixture
def config_dir(tmp_path) -> Path:
    """A copy of config/ plus a tiny model and experiment, for tests to edit."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    write_yaml(target / "model" / "tiny.yaml", TINY_MODEL)
    write_yaml(target / "experiment" / "tiny.yaml", TINY_EXPERIMENT)
    return target
