"""Provenance with every run (spikescale.provenance, spikescale.placement): the node's
topology (hwloc), the CPU set of each rank and thread, CPU settings, MPI library, compilers,
shared libraries, environment (no secrets), the machine file's pinning applied and recorded,
and the flag for threads that shared cores. Real NEST runs, real /proc, real lstopo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, harness_command, harness_env, run_spec
from spikescale import placement as PL
from spikescale import provenance as PV
from spikescale.record import read_record
from spikescale.resources import launch_command

SECRET_NAME = "SLURM_TEST_AUTH_TOKEN"  # an allowed prefix, a secret-looking name
MPI_PYTHON = REPO / ".venvs" / "nest-mpi" / "bin" / "python"
ROOT_FLAG = ["--allow-run-as-root"] if os.geteuid() == 0 else []


def two_cpus() -> set[int]:
    """The first two CPUs this process may use: runs below are confined to them, so that
    '4 threads on 2 cores' holds on any machine."""
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "these tests need 2 CPUs"
    return set(cpus[:2])


def run_on_two_cpus(spec, out, context, env=None):
    cpus = two_cpus()
    return subprocess.run(harness_command(spec, out, context), env=env or harness_env(), capture_output=True,
                          text=True, timeout=300, check=False, preexec_fn=lambda: os.sched_setaffinity(0, cpus))


def texts(values) -> list[str]:
    """Text datasets as read back (bytes) as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def threads_of(rec: dict, rank: str = "0") -> list[dict]:
    """The threads of one rank's last sample, as rows."""
    p = rec["ranks"][rank]["placement"]
    last = np.asarray(p["sample"]).max()
    rows = np.flatnonzero(np.asarray(p["sample"]) == last)
    allowed = texts(p["cpus_allowed"])
    return [{"tid": int(p["tid"][i]), "cpus_allowed": allowed[i], "last_cpu": int(p["last_cpu"][i])}
            for i in rows]


# -- parsing and the verdict, from text and trees ---------------------------------------------

def test_cpu_lists_are_read_and_written_in_the_kernels_format():
    assert PL.parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert PL.format_cpu_list([11, 0, 1, 2, 3, 8, 10]) == "0-3,8,10-11"
    assert PL.format_cpu_list([5]) == "5" and PL.parse_cpu_list("") == []


def test_task_stat_gives_the_last_cpu_and_ticks_after_the_last_parenthesis():
    # fields 3.. of a thread named "nest (omp) 1": utime 300, stime 40, processor (field 39) 7
    after = ["S"] + ["0"] * 10 + ["300", "40"] + ["0"] * 23 + ["7", "0", "0"]
    text = "4242 (nest (omp) 1) " + " ".join(after) + "\n"
    assert PL.parse_task_stat(text) == (7, 340)
    assert PL.parse_status_cpus_allowed("Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n") == "0-1"


def test_this_process_threads_are_sampled_with_their_cpus():
    threads = PL.sample_threads()
    me = next(t for t in threads if t["tid"] == os.getpid())  # the main thread's tid is the pid
    assert set(PL.parse_cpu_list(me["cpus_allowed"])) == os.sched_getaffinity(0)
    assert me["last_cpu"] in os.sched_getaffinity(0)


def _tree(rank, node, cpus, samples, cores):
    """A rank's placement tree as Watch.tree lays it out; samples: [(t_s, [(tid, last_cpu, ticks)])]."""
    rows = [(i, row) for i, (_, threads) in enumerate(samples) for row in threads]
    return {"attrs": {"rank": rank},
            "placement": {"attrs": {"node": node, "cpus": cpus, "core_of_cpu": json.dumps(cores)},
                          "sample_t_s": np.array([t for t, _ in samples]),
                          "sample": np.array([i for i, _ in rows]), "tid": np.array([r[0] for _, r in rows]),
                          "last_cpu": np.array([r[1] for _, r in rows]), "ticks": np.array([r[2] for _, r in rows])}}


TICK = os.sysconf("SC_CLK_TCK")
CORES = {"0": "0:0", "1": "0:1", "2": "0:0", "3": "0:1"}  # CPUs 2 and 3: hyperthreads of cores 0 and 1


def test_two_busy_threads_on_one_core_are_flagged_idle_ones_are_not():
    busy_apart = [(0.0, [(1, 0, 0), (2, 1, 0), (3, 0, 0)]), (1.0, [(1, 0, TICK), (2, 1, TICK), (3, 0, 0)])]
    v = PL.verdict([_tree(0, "n1", "0-1", busy_apart, CORES)], threads_per_node=2, allow_oversubscription=False)
    # thread 3 sits on core 0 beside thread 1, but took no CPU time: not sharing
    assert v == {"threads_share_cores": False, "cpu_sets": "r0:0-1", "threads_share_cores_reason": ""}
    # thread 2 on CPU 2, the other hardware thread of core 0: the same core as thread 1
    on_siblings = [(0.0, [(1, 0, 0), (2, 2, 0)]), (1.0, [(1, 0, TICK), (2, 2, TICK // 2)])]
    v = PL.verdict([_tree(0, "n1", "0-3", on_siblings, CORES)], threads_per_node=2, allow_oversubscription=False)
    assert v["threads_share_cores"] is True and "r0/1, r0/2 on core 0:0" in v["threads_share_cores_reason"]


def test_ranks_on_one_node_share_cores_with_each_other_not_across_nodes():
    rank0 = [(0.0, [(10, 0, 0)]), (1.0, [(10, 1, TICK)])]
    rank1 = [(0.0, [(20, 1, 0)]), (1.0, [(20, 1, TICK)])]
    same_node = [_tree(0, "n1", "0", rank0, CORES), _tree(1, "n1", "1", rank1, CORES)]
    v = PL.verdict(same_node, threads_per_node=2, allow_oversubscription=False)
    assert v["threads_share_cores"] is True and v["cpu_sets"] == "r0:0 r1:1"
    assert "n1: sample 1: threads r0/10, r1/20 on core 0:1" in v["threads_share_cores_reason"]
    two_nodes = [_tree(0, "n1", "0", rank0, CORES), _tree(1, "n2", "1", rank1, CORES)]
    assert PL.verdict(two_nodes, threads_per_node=1, allow_oversubscription=False)["threads_share_cores"] is False


def test_more_threads_than_cores_is_flagged_unless_the_machine_allows_it():
    idle = [(0.0, [(1, 0, 0)]), (1.0, [(1, 0, 0)])]
    # CPUs 0 and 2 are one core: 2 threads there must share it
    v = PL.verdict([_tree(0, "n1", "0,2", idle, CORES)], threads_per_node=2, allow_oversubscription=False)
    assert v["threads_share_cores"] is True and "2 threads on 1 core(s) of CPUs 0,2" in v["threads_share_cores_reason"]
    v = PL.verdict([_tree(0, "n1", "0,2", idle, CORES)], threads_per_node=2, allow_oversubscription=True)
    assert v["threads_share_cores"] is False
    assert PL.verdict([{"attrs": {"rank": 0}}], 1, False)["threads_share_cores"] is None  # nothing sampled


# -- environment, topology, libraries ---------------------------------------------------------

def test_the_environment_keeps_relevant_variables_and_drops_secrets():
    env = {"OMP_NUM_THREADS": "2", "SLURM_JOB_ID": "7", "PATH": "/bin", "HOME": "/root", "EDITOR": "vi",
           "PYTHONHASHSEED": "0",
           SECRET_NAME: "s3cr3t", "OMPI_MCA_PASSWORD": "x", "CUDA_API_KEY": "k", "MPI_CREDENTIALS": "c",
           "NEST_PASSPHRASE": "p", "SLURM_SECRET": "y"}
    assert PV.filtered_environment(env) == {"OMP_NUM_THREADS": "2", "PATH": "/bin", "PYTHONHASHSEED": "0",
                                               "SLURM_JOB_ID": "7"}


def test_environment_modules_are_read_or_said_to_be_absent():
    got = PV.environment_modules({"LOADEDMODULES": "GCC/12:OpenMPI/4.1", "_LMFILES_": "/m/GCC/12:/m/OpenMPI/4.1"})
    assert got == {"loaded_modules": "GCC/12:OpenMPI/4.1", "module_files": "/m/GCC/12:/m/OpenMPI/4.1"}
    assert PV.environment_modules({})["loaded_modules"].startswith("unavailable: LOADEDMODULES not set")


def test_without_hwloc_on_path_the_topology_is_unavailable_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    xml_text, summary = PV.hwloc_topology()
    assert summary == {}
    assert xml_text == ("unavailable: none of lstopo-no-graphics, hwloc-ls on PATH "
                        "(Debian: apt-get install hwloc-nox)")


def test_a_failing_hwloc_is_recorded_not_raised(tmp_path):
    fake = tmp_path / "lstopo-no-graphics"
    fake.write_text("#!/bin/sh\necho 'cannot read topology' >&2\nexit 3\n")
    fake.chmod(0o755)
    xml_text, summary = PV.hwloc_topology(commands=(str(fake),))
    assert summary == {} and xml_text.startswith("unavailable: ") and "failed (3): cannot read topology" in xml_text


def test_cpu_frequency_settings_read_cpufreq_or_say_why_not(tmp_path):
    for cpu, (gov, khz) in enumerate([("performance", "2400000"), ("powersave", "1200000")]):
        d = tmp_path / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
        (d / "scaling_cur_freq").write_text(khz + "\n")
    assert PV.cpu_frequency_settings([0, 1], tmp_path) == {"cpu_governor": "cpu0=performance cpu1=powersave",
                                                            "cpu_cur_freq_mhz": "cpu0=2400 cpu1=1200"}
    missing = PV.cpu_frequency_settings([5], tmp_path)
    assert missing["cpu_governor"].startswith(f"unavailable: {tmp_path}/cpu5/cpufreq")


def test_compilers_are_read_from_elf_comment_sections():
    # this interpreter's own library or binary says which compiler built it
    maps = PV.shared_libraries()
    assert maps and all(p.startswith("/") and ".so" in p for p in maps)
    python = next((p for p in maps if "/libpython" in p), os.path.realpath(sys.executable))
    assert "GCC" in PV.elf_comment(python) or "clang" in PV.elf_comment(python)
    assert PV.elf_comment(__file__) == ""  # not ELF


def test_mpi_library_is_unavailable_without_mpi_and_mpi4py_is_not_imported():
    assert "mpi4py.MPI" not in sys.modules
    assert PV.mpi_library() == "unavailable: mpi4py not loaded in this run (a run without MPI)"
    assert "mpi4py.MPI" not in sys.modules  # asking did not start MPI


# -- pinning: the machine file, the launcher, the environment ---------------------------------

RUN = {"nodes": 1, "tasks_per_node": 2, "threads_per_task": 2}


def test_pinning_reaches_the_launchers():
    mpirun = {"executor": "local", "mpi": {"launcher": "mpirun"}}
    assert "--bind-to none" in launch_command(RUN, mpirun)  # nothing declared: no binding
    words = launch_command(RUN, {**mpirun, "pinning": {"mpirun_bind_to": "core"}}).split()
    assert words[words.index("--bind-to") + 1] == "core" and words.count("--bind-to") == 1
    srun = {"executor": "slurm", "mpi": {"launcher": "srun"}, "pinning": {"srun_cpu_bind": "verbose,cores"}}
    assert "--cpu-bind=verbose,cores" in launch_command(RUN, srun).split()
    assert "--cpu-bind" not in launch_command(RUN, {"executor": "slurm", "mpi": {"launcher": "srun"}})


def test_pinning_sets_the_openmp_environment_and_is_named_in_runs_csv():
    env = {"OMP_PROC_BIND": "false"}
    assert PL.apply_pinning({"omp_proc_bind": "close", "omp_places": "cores", "srun_cpu_bind": "cores"}, env) == \
        {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
    assert env == {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}  # the machine file wins
    assert PL.pinning_environment({"omp_proc_bind": True}) == {"OMP_PROC_BIND": "true"}
    assert PL.pinning_text(None) == "none declared"
    assert PL.pinning_text({"omp_proc_bind": "close", "omp_places": "cores"}) == "omp_places=cores omp_proc_bind=close"


def test_pinning_is_part_of_the_run_context(config_dir):
    from helpers import edit_yaml
    from spikescale.config import load_campaign
    from spikescale.jobs import run_context
    from spikescale.plan import plan_runs

    edit_yaml(config_dir / "machine" / "local.yaml", pinning={"omp_proc_bind": "spread", "omp_places": "cores"})
    campaign = load_campaign("tiny", config_dir)
    run = plan_runs(campaign)[0]
    assert run_context(campaign, run)["machine"]["pinning"] == {"omp_proc_bind": "spread", "omp_places": "cores"}


@pytest.mark.parametrize("pinning, key, allowed", [
    ({"omp_proc_bind": "tight"}, "pinning.omp_proc_bind", "close"),
    ({"omp_places": "everywhere"}, "pinning.omp_places", "cores"),
    ({"srun_cpu_bind": "cores; rm -rf ~"}, "pinning.srun_cpu_bind", "match"),
    ({"mpirun_bind_to": "chip"}, "pinning.mpirun_bind_to", "core"),
    ({"pin": "yes"}, "pinning.pin", "allowed keys: mpirun_bind_to, omp_places, omp_proc_bind, srun_cpu_bind"),
])
def test_bad_pinning_is_refused_naming_file_key_and_value(config_dir, pinning, key, allowed):
    from helpers import edit_yaml
    from test_config import one_problem

    edit_yaml(config_dir / "machine" / "local.yaml", pinning=pinning)
    p = one_problem(config_dir)
    assert p.file.endswith("machine/local.yaml") and p.key == key and allowed in p.allowed, p


def test_a_binding_no_launcher_applies_or_given_twice_is_refused(config_dir):
    from helpers import edit_yaml
    from test_config import one_problem

    edit_yaml(config_dir / "machine" / "local.yaml", pinning={"srun_cpu_bind": "cores"})
    p = one_problem(config_dir)
    assert p.key == "pinning.srun_cpu_bind" and "executor 'slurm'" in p.allowed
    edit_yaml(config_dir / "machine" / "local.yaml", pinning={"mpirun_bind_to": "core"})
    p = one_problem(config_dir)
    assert p.key == "pinning.mpirun_bind_to" and "mpi.launcher: mpirun" in p.allowed
    edit_yaml(config_dir / "machine" / "local-mpi.yaml", pinning={"mpirun_bind_to": "core"},
              mpi={"launcher": "mpirun", "mpirun_args": ["--bind-to", "none"]})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="local-mpi")
    p = one_problem(config_dir)
    assert p.key == "mpi.mpirun_args" and "--bind-to is set by pinning.mpirun_bind_to" in p.allowed


# -- real runs --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    """A 1-thread NEST run with a secret-looking variable in its environment."""
    out = tmp_path_factory.mktemp("one") / "run.h5"
    env = {**harness_env(), SECRET_NAME: "s3cr3t", "OMP_DISPLAY_ENV": "false"}
    proc = subprocess.run(harness_command(run_spec(), out, {"machine": {}}), env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return read_record(out)


@pytest.mark.needs_nest
def test_a_run_records_its_nodes_topology_once(one_thread):
    (node,) = one_thread["provenance"]["nodes"].values()
    xml_text = node["topology_xml"]
    # CI installs hwloc-nox (Makefile SYSTEM_PACKAGES): the XML is there, with its summary
    assert xml_text.startswith("<?xml") and "<topology" in xml_text, xml_text[:200]
    a = node["attrs"]
    assert a["topology_pus"] >= a["topology_cores"] >= a["topology_packages"] >= 1 and a["topology_numa_nodes"] >= 1
    assert a["topology_pus"] == xml_text.count('type="PU"')
    assert a["cpu_model"] == PV.cpu_model() and a["cpu_governor"]  # a governor, or unavailable with why
    assert "node_provenance" not in one_thread["ranks"]["0"]  # moved under provenance/nodes


@pytest.mark.needs_nest
def test_a_run_records_the_cpu_set_of_its_rank_and_every_thread(one_thread):
    p = one_thread["ranks"]["0"]["placement"]
    assert PL.parse_cpu_list(p["attrs"]["cpus"]) == sorted(os.sched_getaffinity(0))  # inherited from this test
    assert texts(p["sample_when"]) == ["start", "end"]  # a short simulation: no progress report
    threads = threads_of(one_thread)
    assert threads and all(PL.parse_cpu_list(t["cpus_allowed"]) for t in threads)
    assert all(t["last_cpu"] in os.sched_getaffinity(0) for t in threads)
    s = one_thread["summary"]["attrs"]
    assert s["cpu_sets"] == f"r0:{p['attrs']['cpus']}" and s["pinning"] == "none declared"
    assert s["threads_share_cores"] is False  # one busy thread cannot share


@pytest.mark.needs_nest
def test_a_run_records_libraries_compilers_and_environment_without_secrets(one_thread):
    process = one_thread["provenance"]["process"]
    env = process["environment"]["attrs"]
    assert SECRET_NAME not in env and "s3cr3t" not in json.dumps(env)
    assert env["OMP_DISPLAY_ENV"] == "false" and "PATH" in env
    libs = texts(process["shared_libraries"])
    assert any(lib.endswith("nestkernel_api.so") for lib in libs)  # the simulator's own library
    assert "GCC" in process["compilers"]["attrs"]["nestkernel_api.so"]
    assert process["attrs"]["mpi_library"].startswith("unavailable: mpi4py not loaded")


@pytest.mark.needs_nest
def test_four_threads_on_two_cores_are_flagged(tmp_path):
    out = tmp_path / "over.h5"
    proc = run_on_two_cpus(run_spec(threads_per_task=4), out, {"machine": {"allow_oversubscription": True}})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = read_record(out)
    s = rec["summary"]["attrs"]
    assert s["threads_share_cores"] is True, rec["provenance"]["placement"]["attrs"]
    assert s["cpu_sets"] == f"r0:{PL.format_cpu_list(two_cpus())}"
    assert "on core" in rec["provenance"]["placement"]["attrs"]["threads_share_cores_reason"]


@pytest.mark.needs_nest
def test_pinning_binds_each_openmp_thread_to_its_own_core_and_is_recorded(tmp_path):
    out = tmp_path / "pinned.h5"
    pinning = {"omp_proc_bind": "close", "omp_places": "cores"}
    env = {**harness_env(), "OMP_PROC_BIND": "false"}  # inherited: the machine file wins
    proc = run_on_two_cpus(run_spec(threads_per_task=2), out, {"machine": {"pinning": pinning}}, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = read_record(out)
    assert rec["provenance"]["process"]["environment"]["attrs"]["OMP_PROC_BIND"] == "close"
    assert rec["provenance"]["process"]["environment"]["attrs"]["OMP_PLACES"] == "cores"
    assert rec["summary"]["attrs"]["pinning"] == "omp_places=cores omp_proc_bind=close"
    # the rank may use both CPUs; its two OpenMP threads are bound, one to each (unpinned, the
    # threads' lists are the rank's: both CPUs)
    assert PL.parse_cpu_list(rec["ranks"]["0"]["placement"]["attrs"]["cpus"]) == sorted(two_cpus())
    bound = [t for t in threads_of(rec) if len(PL.parse_cpu_list(t["cpus_allowed"])) == 1]
    assert sorted(PL.parse_cpu_list(t["cpus_allowed"])[0] for t in bound) == sorted(two_cpus())
    assert all(t["last_cpu"] == PL.parse_cpu_list(t["cpus_allowed"])[0] for t in bound)
    assert rec["summary"]["attrs"]["threads_share_cores"] is False  # bound apart: never on one core


@pytest.mark.needs_nest
def test_without_hwloc_the_run_goes_on_and_says_why(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to("/usr/bin/git")  # the run's git state, and nothing of hwloc
    out = tmp_path / "nohwloc.h5"
    proc = subprocess.run(harness_command(run_spec(), out, {"machine": {}}), env={**harness_env(), "PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = read_record(out)
    (node,) = rec["provenance"]["nodes"].values()
    assert rec["attrs"]["status"] == "ok"
    assert node["topology_xml"].startswith("unavailable: none of lstopo-no-graphics, hwloc-ls on PATH")
    assert node["attrs"]["topology_unavailable"] == node["topology_xml"]


@pytest.mark.needs_mpi
@pytest.mark.needs_nest
def test_two_mpi_ranks_record_both_placements_and_the_mpi_library(tmp_path):
    out = tmp_path / "ranks.h5"
    spec = run_spec(tasks_per_node=2)
    cmd = ["mpirun", "-n", "2", "--oversubscribe", "--bind-to", "core", *ROOT_FLAG, str(MPI_PYTHON), "-m",
           "spikescale.harness", "--spec", json.dumps(spec), "--context", "{}", "--out", str(out)]
    proc = subprocess.run(cmd, env=harness_env(), capture_output=True, text=True, timeout=300, check=False,
                          preexec_fn=lambda: os.sched_setaffinity(0, two_cpus()))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = read_record(out)
    cpus = {r: PL.parse_cpu_list(rec["ranks"][r]["placement"]["attrs"]["cpus"]) for r in ("0", "1")}
    # mpirun bound each rank to a core of its own: one CPU each, not the same one
    assert all(len(c) == 1 for c in cpus.values()) and cpus["0"] != cpus["1"], cpus
    assert rec["summary"]["attrs"]["cpu_sets"] == f"r0:{cpus['0'][0]} r1:{cpus['1'][0]}"
    assert all(threads_of(rec, r) for r in ("0", "1"))
    assert len(rec["provenance"]["nodes"]) == 1  # one node: its topology once
    assert "Open MPI" in rec["provenance"]["process"]["attrs"]["mpi_library"]
