"""envs/build_genn.sh (`make genn`): it builds GeNN only from the released source it expects
(an archive's SHA-256, a tag's commit) and refuses anything else before building; what it
built (GeNN 4.9.0 for brian2genn in the cache, PyGeNN in .venvs/genn) is complete, changed only
where it says, and reused, not rebuilt, by a second `make genn`."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers import REPO
from spikescale.software import genn_path

SCRIPT = REPO / "envs" / "build_genn.sh"
VENDOR = REPO.parent / "shared" / "vendor"


def build(*parts, env_extra: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run(["bash", str(SCRIPT), *parts], env=env, capture_output=True, text=True, timeout=timeout)


def test_an_archive_with_another_checksum_is_refused(tmp_path):
    """A genn-4.9.0.tar.gz that is not the released one (here: a small one of the same name)."""
    sources = tmp_path / "sources"
    (sources / "genn-4.9.0").mkdir(parents=True)
    (sources / "genn-4.9.0" / "version.txt").write_text("4.9.0\n")
    with tarfile.open(sources / "genn-4.9.0.tar.gz", "w:gz") as archive:
        archive.add(sources / "genn-4.9.0", arcname="genn-4.9.0")
    cache = tmp_path / "cache"
    proc = build("genn4", env_extra={"GENN_SOURCE_DIR": str(sources), "SPIKESCALE_CACHE": str(cache)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not GeNN 4.9.0's released archive" in proc.stderr and "refusing to build from it" in proc.stderr
    assert not (cache / "genn-4.9.0").exists()
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".genn-build.lock")] == []  # nothing left


def test_a_git_tag_on_another_commit_is_refused(tmp_path):
    clone = tmp_path / "genn"
    clone.mkdir()
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    (clone / "version.txt").write_text("4.9.0\n")
    subprocess.run([*git, "add", "version.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "not GeNN"], check=True)
    subprocess.run([*git, "tag", "4.9.0"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    cache = tmp_path / "cache"
    proc = build("genn4", env_extra={"GENN_SOURCE_DIR": str(clone), "SPIKESCALE_CACHE": str(cache)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"tag 4.9.0 in {clone} is commit {commit}, not GeNN 4.9.0's release" in proc.stderr
    assert "a9155521a48c9a6c348308639703d7b5eae3508d" in proc.stderr
    assert not (cache / "genn-4.9.0").exists()


def test_a_source_folder_without_genn_is_refused(tmp_path):
    proc = build("genn4", env_extra={"GENN_SOURCE_DIR": str(tmp_path), "SPIKESCALE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 1
    assert f"GENN_SOURCE_DIR={tmp_path} holds neither genn-4.9.0.tar.gz nor a git clone" in proc.stderr


def test_an_unknown_part_is_refused():
    proc = build("genn3", env_extra={})
    assert proc.returncode == 1 and "unknown part 'genn3' (genn4, pygenn)" in proc.stderr


def test_the_vendored_archives_are_the_ones_the_script_expects():
    """The checksums hard-coded in the script (a user's machine has no SHA256SUMS) are the
    vendor folder's, where there is one."""
    sums = VENDOR / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"no {sums} beside this clone")
    script = SCRIPT.read_text()
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        assert digest in script, name


@pytest.mark.needs_genn
def test_genn4_is_built_in_the_cache_as_released_but_for_cuda_13(tmp_path):
    """make genn's GeNN 4.9.0: its libraries built, the one change for CUDA 13 made, where it came
    from written down; a second make genn reuses it (and .venvs/genn) in seconds."""
    genn = Path(genn_path({})[0])
    info = (genn / "spikescale-build-info.txt").read_text()
    assert "SHA-256 f08b3a6c426e11d1336d0b0cd048f9f398692736a759efdfb3c8f1120d81aa42" in info or \
        "commit a9155521a48c9a6c348308639703d7b5eae3508d" in info, info
    assert (genn / "version.txt").read_text().strip() == "4.9.0"
    assert (genn / "lib" / "libgenn.a").is_file() and (genn / "lib" / "libgenn_single_threaded_cpu_backend.a").is_file()
    optimiser = (genn / "src" / "genn" / "backends" / "cuda" / "optimiser.cc").read_text()
    assert optimiser.count("cuCtxCreate(") == 2 and "#if CUDA_VERSION >= 13000" in optimiser
    if "cuda (CUDA" in info:
        assert (genn / "lib" / "libgenn_cuda_backend.a").is_file()
    from spikescale.backends.brian2genn import cuda13_problem

    cuda13 = tmp_path / "cuda"
    (cuda13 / "include").mkdir(parents=True)
    (cuda13 / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    assert cuda13_problem(str(genn), str(cuda13)) is None

    if os.environ.get("GENN_PATH") is None:  # else the GeNN checked above is not make genn's
        proc = build("genn4", "pygenn", env_extra={}, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"reusing {genn}" in proc.stdout and f"reusing {REPO / '.venvs' / 'genn'}" in proc.stdout


@pytest.mark.needs_genn
def test_pygenn_runs_a_model_in_the_genn_environment(tmp_path, genn_python):
    """What the genn backend relies on: `from pygenn import GeNNModel` in .venvs/genn, a model
    built and run on the CPU backend, the installed PyGeNN the wheel from the cache."""
    code = """
import pygenn, numpy
from pygenn import GeNNModel
m = GeNNModel("float", "probe", backend="single_threaded_cpu")
m.dt = 1.0
p = m.add_neuron_population("p", 4, "LIF", {"C": 0.25, "TauM": 10.0, "Vrest": -65.0, "Vreset": -65.0,
    "Vthresh": -50.0, "Ioffset": 1.0, "TauRefrac": 2.0}, {"V": -65.0, "RefracTime": 0.0})
m.build(); m.load()
for _ in range(50):
    m.step_time()
p.vars["RefracTime"].pull_from_device()
print(pygenn.__version__, pygenn.__file__, m.timestep)
"""
    proc = subprocess.run([str(genn_python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version, where, steps = proc.stdout.split()[-3:]
    assert version == "5.4.0" and steps == "50"
    assert "site-packages" in where  # the installed wheel, not a source tree
    stamp = (REPO / ".venvs" / "genn" / ".pygenn-selftest-ok").read_text()
    assert "/wheels/pygenn-5.4.0-" in stamp
