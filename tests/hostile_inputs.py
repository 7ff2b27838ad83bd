"""A catalogue of hostile and broken configurations, shared by tests/test_hostile.py (each is
rejected with a clear error, nothing executes or writes) and tests/reliability_figures.py
(which counts how many were tried and how many were wrongly accepted).

A case takes a fresh copy of config/ with the tiny campaign (tests/helpers.py) and breaks one
file. ``where`` is what the error must name: the file (a path suffix) and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

CANARY = "/tmp/spikescale-hostile-canary"  # a hostile config that executes anything creates it


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # path suffix the error must name, e.g. "machine/local.yaml"
    key: str  # key (or part of it) the error must name
    apply: Callable[[Path], None]


def _edit(part: str, stem: str, **changes):
    def apply(config_dir: Path) -> None:
        path = config_dir / part / f"{stem}.yaml"
        data = yaml.safe_load(path.read_text())
        for dotted, value in changes.items():
            node = data
            keys = dotted.split("__")
            for k in keys[:-1]:
                node = node.setdefault(k, {})
            node[keys[-1]] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return apply


def _raw(part: str, stem: str, content: bytes | str):
    def apply(config_dir: Path) -> None:
        path = config_dir / part / f"{stem}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return apply


def _append(part: str, stem: str, text: str):
    def apply(config_dir: Path) -> None:
        path = config_dir / part / f"{stem}.yaml"
        path.write_text(path.read_text() + text)
    return apply


def _special(part: str, stem: str, kind: str):
    """The file replaced by something that is not a regular file."""
    def apply(config_dir: Path) -> None:
        path = config_dir / part / f"{stem}.yaml"
        path.unlink()
        if kind == "link to /dev/zero":
            path.symlink_to("/dev/zero")
        elif kind == "link to /dev/urandom":
            path.symlink_to("/dev/urandom")
        else:
            os.mkfifo(path)
    return apply


def _slurm_machine(**slurm):
    """The tiny campaign moved to a SLURM machine whose slurm section gets ``slurm``."""
    def apply(config_dir: Path) -> None:
        _edit("experiment", "tiny", machine="slurm-generic")(config_dir)
        path = config_dir / "machine" / "slurm-generic.yaml"
        data = yaml.safe_load(path.read_text())
        data.setdefault("slurm", {}).update(slurm)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return apply


def _billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


SHELL = f"x; touch {CANARY}"
SUBST = f"$(touch {CANARY})"
BACKTICK = f"`touch {CANARY}`"

CASES: list[Case] = [
    # shell metacharacters in every value that reaches a command line
    Case("shell in machine name", "machine/local.yaml", "name", _edit("machine", "local", name=SHELL)),
    Case("command substitution in partition", "machine/slurm-generic.yaml", "slurm.partition",
         _slurm_machine(partition=SUBST)),
    Case("backticks in account", "machine/slurm-generic.yaml", "slurm.account", _slurm_machine(account=BACKTICK)),
    Case("newline in qos", "machine/slurm-generic.yaml", "slurm.qos", _slurm_machine(qos="normal\n#SBATCH --uid=0")),
    Case("shell in constraint", "machine/slurm-generic.yaml", "slurm.constraint", _slurm_machine(constraint="a|b;id")),
    Case("injected sbatch option value", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=[f"--comment=x {SUBST}"])),
    Case("managed sbatch option smuggled in", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["--wrap=id"])),
    # sbatch takes any unambiguous prefix of a long option
    Case("abbreviated --partition", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["--part=gpu"])),
    Case("abbreviated --output", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["--outp=/home/x.log"])),
    Case("abbreviated --cpus-per-task", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["--cpus-per-t=64"])),
    Case("abbreviated --mem-per-cpu", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["--mem-per-c=1"])),
    Case("short option", "machine/slurm-generic.yaml", "slurm.extra_sbatch[0]",
         _slurm_machine(extra_sbatch=["-p", "gpu"])),
    Case("option and value as two items", "machine/slurm-generic.yaml", "slurm.extra_sbatch[1]",
         _slurm_machine(extra_sbatch=["--partition", "gpu"])),
    Case("shell in mpirun argument", "machine/local-mpi.yaml", "mpi.mpirun_args[0]",
         lambda d: (_edit("experiment", "tiny", machine="local-mpi")(d),
                    _edit("machine", "local-mpi", mpi={"launcher": "mpirun", "mpirun_args": [f"--x={SUBST}"]})(d))),
    # SpiNNaker: the board's name and the spalloc URL end up in sPyNNaker's configuration file
    Case("shell in SpiNNaker board name", "machine/local.yaml", "spinnaker.machine_name",
         _edit("machine", "local", spinnaker={"fallback": "prefer_hardware", "machine_name": f"spinn-4 {SUBST}"})),
    Case("new section injected through the spalloc URL", "machine/local.yaml", "spinnaker.spalloc_server",
         _edit("machine", "local", spinnaker={"fallback": "prefer_hardware",
                                              "spalloc_server": "http://x\n[Machine]\nvirtual_board = True"})),
    Case("shell in module name", "software/default.yaml", "nest.environment.modules[0]",
         _raw("software", "default", f"nest:\n  environment:\n    kind: modules\n    modules: ['NEST; touch {CANARY}']\n")),
    Case("shell in interpreter", "software/default.yaml", "nest.environment.interpreter",
         _raw("software", "default", "nest:\n  environment:\n    kind: python\n    interpreter: '/usr/bin/python3 -c \"import os\"'\n")),
    Case("shell in version pin", "software/default.yaml", "nest.versions.nest-simulator",
         _raw("software", "default", "nest:\n  environment:\n    kind: venv\n  versions:\n    nest-simulator: '3.10; id'\n")),
    # path traversal in names that become paths
    Case("traversal in campaign name", "experiment/tiny.yaml", "name", _edit("experiment", "tiny", name="../../etc")),
    Case("absolute campaign name", "experiment/tiny.yaml", "name", _edit("experiment", "tiny", name="/tmp/x")),
    Case("traversal in model reference", "experiment/tiny.yaml", "model",
         _edit("experiment", "tiny", model="../../../etc/passwd")),
    Case("traversal in machine reference", "experiment/tiny.yaml", "machine", _edit("experiment", "tiny", machine="../x")),
    Case("traversal in software reference", "experiment/tiny.yaml", "software",
         _edit("experiment", "tiny", software="..")),
    Case("traversal in venv environment name", "software/default.yaml", "nest.environment.name",
         _raw("software", "default", "nest:\n  environment:\n    kind: venv\n    name: ../../../../tmp/x\n")),
    # YAML that builds objects, expands without bound or is not a mapping
    Case("python tag", "model/tiny.yaml", "(file)",
         _raw("model", "tiny", f"model: !!python/object/apply:os.system ['touch {CANARY}']\n")),
    Case("python name tag", "experiment/tiny.yaml", "(file)",
         _raw("experiment", "tiny", "name: !!python/name:os.system\n")),
    Case("billion laughs", "model/tiny.yaml", "(file)", _raw("model", "tiny", _billion_laughs())),
    Case("deeply nested", "model/tiny.yaml", "(file)", _raw("model", "tiny", "a: " + "[" * 5000 + "]" * 5000 + "\n")),
    Case("a list, not a mapping", "model/tiny.yaml", "(file)", _raw("model", "tiny", "- 1\n- 2\n")),
    Case("empty file", "machine/local.yaml", "(file)", _raw("machine", "local", "")),
    Case("bytes that are not UTF-8", "model/tiny.yaml", "(file)", _raw("model", "tiny", b"model: pd14\ndrive: \xff\xfe\n")),
    Case("NUL bytes", "model/tiny.yaml", "(file)", _raw("model", "tiny", b"model: pd14\x00\n")),
    Case("huge file", "model/tiny.yaml", "(file)", _raw("model", "tiny", "# " + "x" * (2 << 20) + "\n")),
    Case("non-string keys", "model/tiny.yaml", "1", _append("model", "tiny", "1: one\n")),
    # huge, tiny and non-finite values
    Case("huge model time", "model/tiny.yaml", "t_sim_ms", _edit("model", "tiny", t_sim_ms=1e300)),
    Case("infinite presimulation", "model/tiny.yaml", "t_presim_ms", _edit("model", "tiny", t_presim_ms=float("inf"))),
    Case("NaN scale", "model/tiny.yaml", "n_scaling", _edit("model", "tiny", n_scaling=float("nan"))),
    Case("vanishing time step", "model/tiny.yaml", "dt_ms", _edit("model", "tiny", dt_ms=1e-300)),
    Case("seed beyond 32 bits", "model/tiny.yaml", "seeds[0]", _edit("model", "tiny", seeds=[2 ** 64])),
    Case("twenty thousand seeds", "model/tiny.yaml", "seeds", _edit("model", "tiny", seeds=list(range(1, 20_001)))),
    Case("a million runs", "experiment/tiny.yaml", "axes",
         lambda d: (_edit("model", "tiny", seeds=list(range(1, 10_001)))(d),
                    _edit("experiment", "tiny", repetitions=100)(d))),
    Case("billion repetitions", "experiment/tiny.yaml", "repetitions", _edit("experiment", "tiny", repetitions=10 ** 9)),
    Case("billion threads, oversubscription allowed", "experiment/tiny.yaml", "axes.threads_per_task[0]",
         lambda d: (_edit("machine", "local", allow_oversubscription=True)(d),
                    _edit("experiment", "tiny", axes={"nodes": [1], "tasks_per_node": [1],
                                                      "threads_per_task": [10 ** 9]})(d))),
    Case("huge node count", "machine/local.yaml", "nodes_max", _edit("machine", "local", nodes_max=10 ** 12)),
    Case("huge memory", "machine/local.yaml", "memory_per_node_mb", _edit("machine", "local", memory_per_node_mb=10 ** 30)),
    Case("huge walltime", "machine/local.yaml", "walltime_max_min", _edit("machine", "local", walltime_max_min=10 ** 12)),
    Case("boolean as count", "experiment/tiny.yaml", "repetitions", _edit("experiment", "tiny", repetitions=True)),
    Case("string as number", "model/tiny.yaml", "n_scaling", _edit("model", "tiny", n_scaling="0.1; id")),
    Case("negative weight factor", "model/tiny.yaml", "weight_factor", _edit("model", "tiny", weight_factor=-1.0)),
    Case("huge sampling rate", "machine/local.yaml", "energy.sampling_hz",
         _edit("machine", "local", energy={"sampling_hz": 1e12})),
    Case("whole number written as 2.0", "experiment/tiny.yaml", "repetitions", _edit("experiment", "tiny", repetitions=2.0)),
    Case("a key given twice", "model/tiny.yaml", "(file)", _append("model", "tiny", "n_scaling: 0.5\n")),
    Case("shell in a version pin's name", "software/default.yaml", "nest.versions",
         _raw("software", "default", "nest:\n  environment:\n    kind: venv\n  versions:\n    '$(id)': '1'\n")),
    Case("traversal in conda file", "software/default.yaml", "nest.environment.file",
         _raw("software", "default", "nest:\n  environment:\n    kind: conda\n    file: ../../../../../../etc/passwd\n")),
    Case("traversal in interpreter", "software/default.yaml", "nest.environment.interpreter",
         _raw("software", "default", "nest:\n  environment:\n    kind: python\n    interpreter: ../../../bin/sh\n")),
    Case("huge description", "model/tiny.yaml", "description", _edit("model", "tiny", description="x" * 100_000)),
    Case("too few reference seeds", "experiment/tiny.yaml", "validation.reference_seeds",
         _edit("experiment", "tiny", validation={"reference_seeds": [1, 2]})),
    # special files in a configuration file's place: never read without a bound, never opened blocking
    Case("link to /dev/zero", "model/tiny.yaml", "(file)", _special("model", "tiny", "link to /dev/zero")),
    Case("link to /dev/urandom", "machine/local.yaml", "(file)", _special("machine", "local", "link to /dev/urandom")),
    Case("FIFO", "experiment/tiny.yaml", "(file)", _special("experiment", "tiny", "fifo")),
]
