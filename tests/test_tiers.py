"""The test tiers (conftest.py, docs/testing.md): a test whose need is missing skips outside CI
and fails in CI, needs_genn too (`make test` builds GeNN); in CI a session that skipped anything
fails; a test that takes a simulator's fixture without its marker is refused at collection.

The mechanism itself runs in a pytest of its own, on copies of conftest.py and helpers.py in a
folder of their own: its .venvs holds only what a test puts there, so every other environment
is missing, as on a machine where it was never built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import conftest
from conftest import NEEDS, decide

HERE = Path(__file__).resolve().parent

PROBES = """
import pytest

@pytest.mark.needs_nest
def test_nest():
    pass

@pytest.mark.needs_brian2
def test_brian2(brian2_python):
    pass

@pytest.fixture
def brian2_python():
    raise AssertionError("a test whose need is missing must not reach its fixtures")

@pytest.mark.needs_genn
def test_genn():
    pass

def test_plain():
    pass

@pytest.mark.skipif(True, reason="skipped by the test itself")
def test_skips_itself():
    pass
"""


def test_every_needs_marker_has_a_check(pytestconfig):
    declared = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert {m for m in declared if m.startswith("needs_")} | {"slurm"} == set(NEEDS)


@pytest.mark.parametrize("marker", sorted(NEEDS))
def test_a_missing_need_skips_outside_ci_and_fails_in_ci(marker):
    assert decide(marker, None, ci=False) is None and decide(marker, None, ci=True) is None
    kind, reason = decide(marker, "it is not there", ci=False)
    assert kind == "skip" and reason.startswith(f"{marker}: it is not there; to get it: {NEEDS[marker].how}")
    kind, reason = decide(marker, "it is not there", ci=True)
    assert kind == "fail" and "in CI every test must run" in reason


def test_missing_genn_fails_in_ci_and_says_make_genn():
    """GeNN was the one need CI could not have; `make test` builds it now (make genn)."""
    assert conftest.MAY_SKIP_IN_CI == set()
    kind, reason = decide("needs_genn", ".venvs/genn is not built (no .installed)", ci=True)
    assert kind == "fail" and "to get it: make genn" in reason and "in CI every test must run" in reason
    kind, reason = decide("needs_genn", ".venvs/genn is not built (no .installed)", ci=False)
    assert kind == "skip" and "to get it: make genn" in reason


def test_how_to_get_each_need_names_a_command():
    assert NEEDS["needs_nest"].how == NEEDS["needs_brian2"].how == NEEDS["needs_spinnaker"].how == "make env"
    assert NEEDS["needs_mpi"].how == "make nest-mpi"
    assert NEEDS["needs_genn"].how == "make genn"
    assert "make system-deps" in NEEDS["slurm"].how


def test_ci_allows_no_skip(monkeypatch):
    skipped = [("t.py::a", {"needs_genn", "a"}, "no GeNN"), ("t.py::b", {"needs_nest", "b"}, "skipped by hand"),
               ("t.py", set(), "module skipped")]
    assert conftest.ci_skip_problems(skipped) == ["t.py::a: no GeNN", "t.py::b: skipped by hand",
                                                  "t.py: module skipped"]
    # the mechanism for a need CI cannot have, should there be one again
    monkeypatch.setattr(conftest, "MAY_SKIP_IN_CI", {"needs_genn"})
    assert conftest.ci_skip_problems(skipped) == ["t.py::b: skipped by hand", "t.py: module skipped"]


def test_ci_is_read_from_the_environment(monkeypatch):
    for value, expected in (("true", True), ("1", True), ("", False), ("false", False)):
        monkeypatch.setenv("CI", value)
        assert conftest.in_ci() is expected
    monkeypatch.delenv("CI")
    assert conftest.in_ci() is False


# -- the mechanism in a pytest of its own ----------------------------------------------------

@pytest.fixture
def elsewhere(tmp_path, pytestconfig):
    """A repository with the tests' conftest.py and helpers.py, the probes above, and of the
    environments only .venvs/nest."""
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("conftest.py", "helpers.py"):
        shutil.copy(HERE / name, tests / name)
    (tests / "test_probes.py").write_text(PROBES)
    markers = "\n".join(f"    {line}" for line in pytestconfig.getini("markers"))
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
                                         f"markers =\n{markers}\n")
    (tmp_path / ".venvs" / "nest").mkdir(parents=True)
    (tmp_path / ".venvs" / "nest" / ".installed").write_text("")
    return tmp_path


def run_pytest(folder: Path, *args, ci: bool):
    """(exit status, {test: (outcome, message)}, output) of a pytest in folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GENN_PATH", "SPIKESCALE_FAULT_LEDGER")}
    if ci:
        env["CI"] = "true"
    junit = folder / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests", f"--junitxml={junit}", *args], cwd=folder,
                          env=env, check=False, capture_output=True, text=True, timeout=120)
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            found = [(child.tag, child.get("message", "")) for child in case
                     if child.tag in ("skipped", "error", "failure")]
            outcomes[case.get("name")] = found[0] if found else ("passed", "")
        junit.unlink()
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def test_outside_ci_a_missing_need_skips_and_says_how_to_get_it(elsewhere):
    status, outcomes, output = run_pytest(elsewhere, ci=False)
    assert status == 0, output
    assert outcomes["test_nest"] == outcomes["test_plain"] == ("passed", "")
    kind, message = outcomes["test_brian2"]
    assert kind == "skipped" and message == "needs_brian2: .venvs/brian2 is not built (no .installed); to get it: make env"
    kind, message = outcomes["test_genn"]
    assert kind == "skipped" and message.startswith("needs_genn: .venvs/brian2genn is not built (no .installed); "
                                                    ".venvs/genn is not built (no .installed)"), message
    assert message.endswith("to get it: make genn"), message
    assert outcomes["test_skips_itself"] == ("skipped", "skipped by the test itself")


def test_in_ci_a_missing_need_fails_and_so_does_any_skip(elsewhere):
    status, outcomes, output = run_pytest(elsewhere, ci=True)
    assert status == 1, output
    for test, marker in (("test_brian2", "needs_brian2"), ("test_genn", "needs_genn")):
        kind, message = outcomes[test]
        assert kind == "error" and f"{marker}: .venvs/brian2" in message and "in CI every test must run" in message
    assert outcomes["test_nest"] == ("passed", "")
    assert "skipped in CI" in output and "test_probes.py::test_skips_itself: skipped by the test itself" in output

    # without the test that skips itself and the missing needs, nothing skips: CI passes
    status, outcomes, output = run_pytest(elsewhere, "-k", "not skips_itself and not brian2 and not genn", ci=True)
    assert status == 0 and set(outcomes) == {"test_nest", "test_plain"}, output
    assert "skipped in CI" not in output


def test_a_fixture_of_a_simulator_without_its_marker_is_refused(elsewhere):
    (elsewhere / "tests" / "test_unmarked.py").write_text("def test_forgot(nest_python):\n    pass\n")
    status, _, output = run_pytest(elsewhere, ci=False)
    assert status == pytest.ExitCode.USAGE_ERROR, output
    assert "test_unmarked.py::test_forgot uses nest_python but is not marked needs_nest" in output
