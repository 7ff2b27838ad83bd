"""brian2genn backend: PD14 through spikescale.models.pd14.brian2_builder on GeNN 4 (the genn device of
brian2genn): CUDA where present, GeNN's single-threaded CPU backend otherwise.

The same phases as the brian2 backend (spikescale.backends.brian2), with three GeNN limits:

- GeNN takes one delay per synapse population: every delay on the grid gets a Synapses
  object of its own (``delay_classes``), the faithful split of PD14's distributed delays.
- brian2genn allows one run() per program and no code after it: the program is declared as
  one run of presimulation + simulation; code inserted before GeNN's run loop runs the
  presimulation itself (``eng.run``) and stops at a marker, and the program's own run then
  simulates the rest (its duration is given on the command line). Each phase is still one
  run of GeNN's loop, timed by GeNN's kernel timers (``profile=True``).
- run_regularly operations run on the host in brian2genn, so the Poisson background is a
  PoissonInput per population (a binomial count per step, see brian2_builder.create).

GeNN is not on PyPI: the run finds it through GENN_PATH, which the software entry's
``genn_path`` sets (config/software/*.yaml); see README "GeNN".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from spikescale.backends.base import Capabilities
from spikescale.backends.brian2 import ONE_PROCESS, Brian2Backend, _marker_code
from spikescale.models.pd14 import brian2_builder

# GeNN's kernel timers (seconds, summed over the program), printed at each marker
GENN_TIMERS = ("neuronUpdateTime", "presynapticUpdateTime", "initTime", "initSparseTime")


def cuda_path() -> str | None:
    """The CUDA toolkit brian2genn compiles with: CUDA_PATH, or the one of nvcc on PATH.
    nvcc may be a wrapper script outside the toolkit (seen here: /usr/local/bin/nvcc execs
    /usr/local/cuda-13.0/bin/nvcc), so the folder above it counts only if it holds
    include/cuda.h; otherwise nvcc's dry run names the toolkit (its TOP, as
    envs/build_genn.sh reads it)."""
    if os.environ.get("CUDA_PATH"):
        return os.environ["CUDA_PATH"]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    beside = Path(nvcc).resolve().parent.parent
    if (beside / "include" / "cuda.h").is_file():
        return str(beside)
    try:
        out = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("#$ TOP="):
            top = Path(line[len("#$ TOP="):].strip())
            return str(top.resolve()) if (top / "include" / "cuda.h").is_file() else None
    return None


def gpu_visible() -> bool:
    """An NVIDIA GPU this process can use (nvidia-smi lists one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def genn_problem(genn_path: str | None) -> str | None:
    """Why GENN_PATH does not point at a usable GeNN 4 (None when it does)."""
    if not genn_path:
        return "GENN_PATH is not set"
    if not (Path(genn_path) / "bin" / "genn-buildmodel.sh").is_file():
        return f"{genn_path} has no bin/genn-buildmodel.sh (not a GeNN 4.x installation)"
    return None


def cuda_version(cuda: str) -> int | None:
    """CUDA_VERSION of a toolkit (e.g. 13000 for 13.0), from its cuda.h; None if unreadable."""
    header = Path(cuda) / "include" / "cuda.h"
    try:
        match = re.search(r"^#define CUDA_VERSION (\d+)", header.read_text(errors="replace"), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def cuda13_problem(genn_path: str, cuda: str) -> str | None:
    """GeNN 4.9.0 as released calls cuCtxCreate with three arguments, which CUDA 13 changed to
    four: its CUDA backend then fails to build with 'too few arguments' deep inside
    brian2genn's compilation. Said plainly before anything is built (docs/brian2.md)."""
    version = cuda_version(cuda)
    optimiser = Path(genn_path) / "src" / "genn" / "backends" / "cuda" / "optimiser.cc"
    if version is None or version < 13000 or not optimiser.is_file():
        return None
    if "cuCtxCreate(&cuContext, 0, cuDevice)" in optimiser.read_text(errors="replace") and \
            "CUDA_VERSION >= 13000" not in optimiser.read_text(errors="replace"):
        return (f"GeNN at {genn_path} does not build with the CUDA {version // 1000}.{version % 1000 // 10} toolkit at "
                f"{cuda}: its {optimiser.relative_to(genn_path)} calls cuCtxCreate with the arguments of CUDA 12 "
                "and older. Use a CUDA 12 toolkit (CUDA_PATH), or change that call as docs/brian2.md describes")
    return None


class Brian2GeNNBackend(Brian2Backend):
    name = "brian2genn"
    capabilities = Capabilities(platform="gpu", emulated=False, build_phases=True, mpi=False,
                                one_process_why=ONE_PROCESS)
    device_name = "genn"

    def __init__(self, spec: dict, context: dict | None = None):
        super().__init__(spec, context)
        self.use_gpu: bool | None = None  # decided in setup: a CUDA toolkit and a visible GPU

    def capabilities_of_run(self) -> Capabilities:
        """Without a CUDA toolkit or a GPU, GeNN runs its single-threaded CPU backend: the
        run's figures are then the CPU's."""
        if self.use_gpu is False:
            return replace(self.capabilities, platform="cpu")
        return self.capabilities

    def import_simulator(self) -> None:
        import brian2
        import brian2genn  # noqa: F401 - registers the genn device

        self.b2 = brian2

    def _set_device(self) -> None:
        b2 = self.b2
        problem = genn_problem(os.environ.get("GENN_PATH"))
        if problem:
            raise RuntimeError(f"brian2genn needs GeNN 4.x: {problem}. Set genn_path in the brian2genn entry of "
                               "config/software/<file>.yaml (see README, GeNN)")
        cuda = cuda_path()
        # GeNN's CUDA backend needs both a toolkit to compile with and a GPU to run on
        self.use_gpu = cuda is not None and gpu_visible()
        if self.use_gpu:
            problem = cuda13_problem(os.environ["GENN_PATH"], cuda)
            if problem:
                raise RuntimeError(problem)
        if cuda:
            b2.prefs.devices.genn.cuda_backend.cuda_path = cuda
        b2.prefs.devices.genn.path = os.environ["GENN_PATH"]
        # brian2genn refuses a manual build() after run() ("Cannot execute code after the run
        # statement"): run() builds, and run=False makes that build generate and compile only.
        # profile: GeNN's kernel timers
        b2.set_device("genn", use_GPU=self.use_gpu, directory=str(self.workdir / "build"), run=False,
                      with_output=False, profile=True)

    def _seed_run_time(self) -> None:
        """brian2genn refuses Brian2's seed() ("Setting a seed is currently not supported"):
        the network comes from the run's seed (numpy), GeNN's generator of the background
        spikes is not seeded by it (docs/brian2.md)."""

    def versions(self) -> dict:
        import brian2genn

        genn_version = (Path(os.environ["GENN_PATH"]) / "version.txt")
        return {"brian2": self.b2.__version__, "brian2genn": brian2genn.__version__,
                "genn": genn_version.read_text().strip() if genn_version.is_file() else "unknown",
                "brian2_device": "genn (CUDA)" if self.use_gpu else "genn (CPU, single-threaded)"}

    def create(self) -> None:
        self.handles = brian2_builder.create(self.b2, self.network, self.rng, dt_ms=float(self.spec["dt_ms"]),
                                             record_spikes=self.spec["record_spikes"],
                                             poisson_input=True)

    def connect(self) -> None:
        brian2_builder.connect(self.b2, self.network, self.handles, self.rng, dt_ms=float(self.spec["dt_ms"]),
                               delay_classes=True)

    def _declare_runs(self) -> None:
        device = self.b2.get_device()
        counter, presim_ms = self._counter_array, float(self.spec["t_presim_ms"])
        before = _marker_code("loaded", counter, GENN_TIMERS)
        if presim_ms > 0:
            before += f"eng.run({presim_ms / 1000.0!r});\n" + _marker_code("presimulated", counter, GENN_TIMERS)
            self._pending.append(presim_ms)
        device.insert_code("before_network_run", before)
        device.insert_code("after_network_run", _marker_code("simulated", counter, GENN_TIMERS))
        self._pending.append(float(self.spec["t_sim_ms"]))
        self.net.run((presim_ms + float(self.spec["t_sim_ms"])) * self.b2.units.ms)

    def _build(self) -> None:
        """Nothing: run() in _declare_runs has generated and compiled the program."""

    def _command(self) -> tuple[list[str], dict]:
        b2 = self.b2
        device = b2.get_device()
        os.makedirs(os.path.join(device.project_dir, "results"), exist_ok=True)
        env = dict(os.environ)
        env.update(b2.prefs["devices.cpp_standalone.run_environment_variables"])
        env.update(device.run_environment_variables)
        # the program's own run() is the simulation: its duration (s) on the command line
        return ["./main", "test", repr(float(self.spec["t_sim_ms"]) / 1000.0)], env

    def counts(self) -> dict:
        out = super().counts()
        out["n_virtual_processes"] = 1
        return out
