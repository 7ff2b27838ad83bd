"""genn backend: PD14 through spikescale.models.pd14.genn_builder on GeNN 5 (PyGeNN, GeNN's own
Python interface): GeNN's single-threaded CPU backend, or CUDA.

The harness's phases map onto PyGeNN like this (docs/genn.md):

- setup: ``import pygenn``; the GeNNModel (precision, backend, ``optimize_code``), dt, seed,
  GeNN's kernel timers (``timing_enabled``), in a per-run directory under $TMPDIR.
- create, connect: neuron populations, current sources and synapse populations; with the
  default connectivity ``host`` the synapses are drawn here, in numpy.
- compile: ``model.build()``: GeNN's code generation and the compilation of its C++.
- load: ``model.load()``: memory allocated, state and connectivity initialised or uploaded.
- presimulate, simulate: ``model.step_time()`` per step. GeNN's own timers (neuron update,
  presynaptic update, initialisation) are kept per phase as ``time_<timer>``.
- collect: spike counts (each neuron's ``SpikeCount``) and recorded spikes read back; the run
  directory is removed.

Settings (the software entry's ``pygenn`` section, config/software/*.yaml, defaults in the
schema): ``backend`` (auto, single_threaded_cpu, cuda), ``precision`` (double, float),
``connectivity`` (host, device), ``procedural_connectivity`` (CUDA; needs device),
``optimize_code``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from spikescale.backends.base import Backend, Capabilities
from spikescale.backends.brian2genn import gpu_visible
from spikescale.models.pd14 import genn_builder
from spikescale.models.pd14 import params as P
from spikescale.schemas import complete

ONE_PROCESS = "GeNN runs on one process (one CPU thread or one GPU, no MPI)"  # for the configuration check
# GeNN's kernel timers (seconds, summed since load), kept per phase as time_<name>
GENN_TIMERS = ("neuron_update_time", "presynaptic_update_time", "init_time", "init_sparse_time")


def settings_of(context: dict) -> dict:
    """The run's PyGeNN settings: the software entry's ``pygenn`` section with the schema's
    defaults (a run started by hand behaves as one the workflow started)."""
    entry = dict(context.get("software", {}))
    entry.setdefault("environment", {"kind": "venv"})
    entry["pygenn"] = entry.get("pygenn", {})
    return complete("software", {"genn": entry})["genn"]["pygenn"]


def gpu_provenance() -> dict:
    """GPU model and driver of the GPUs nvidia-smi lists (empty without one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    rows = [line.split(",") for line in out.stdout.strip().splitlines() if "," in line]
    if out.returncode != 0 or not rows:
        return {}
    return {"gpu_name": "; ".join(r[0].strip() for r in rows), "gpu_driver": rows[0][1].strip()}


class GeNNBackend(Backend):
    name = "genn"
    capabilities = Capabilities(platform="cpu", emulated=False, build_phases=True, mpi=False,
                                one_process_why=ONE_PROCESS)

    def __init__(self, spec: dict, context: dict | None = None):
        super().__init__(spec, context)
        self.settings = settings_of(self.context)
        self.genn = None
        self.model = None
        self.handles = None
        self.backend_name: str | None = None  # decided in setup
        self.rng = np.random.default_rng(int(spec["seed"]))
        self.dt_ms = float(spec["dt_ms"])
        self.workdir: Path | None = None
        self._timers_before: dict = {}
        self._timers_phase: dict = {}
        self._spikes_before = 0
        self._spikes_last = 0
        self._record_steps = 0  # GeNN's recording buffer length (steps); 0: not recording
        self._recorded: list[list] = [[] for _ in P.POPULATIONS]
        self._collected = None

    def capabilities_of_run(self) -> Capabilities:
        """On CUDA, the run's figures are the GPU's."""
        if self.backend_name == "cuda":
            return replace(self.capabilities, platform="gpu")
        return self.capabilities

    # --- set-up -----------------------------------------------------------------------
    def import_simulator(self) -> None:
        import pygenn  # imported here so that its start-up counts as set-up time

        self.genn = pygenn

    def _choose_backend(self) -> str:
        from pygenn.genn_model import backend_modules

        wanted, available = self.settings["backend"], list(backend_modules)
        if wanted == "auto":
            return "cuda" if "cuda" in available and gpu_visible() else "single_threaded_cpu"
        if wanted not in available:
            raise RuntimeError(f"PyGeNN here has no {wanted!r} backend (it has: {', '.join(available)}); "
                               "PyGeNN builds its CUDA backend only where a CUDA toolkit was found at install time")
        return wanted

    def setup(self) -> None:
        ranks = self.spec["nodes"] * self.spec["tasks_per_node"]
        if ranks != 1:
            raise RuntimeError(f"run asks for {ranks} MPI ranks; {ONE_PROCESS}")
        s = self.settings
        if s["procedural_connectivity"] and s["connectivity"] != "device":
            raise RuntimeError("pygenn.procedural_connectivity needs pygenn.connectivity: device (GeNN draws the "
                               "synapses at every spike, so it must draw them itself)")
        self.backend_name = self._choose_backend()
        if s["procedural_connectivity"] and self.backend_name != "cuda":
            raise RuntimeError(f"pygenn.procedural_connectivity needs GeNN's cuda backend; this run has "
                               f"{self.backend_name}, which GeNN refuses it on")
        threads = int(self.spec["threads_per_task"])
        if self.backend_name == "single_threaded_cpu" and threads != 1:
            raise RuntimeError(f"GeNN's single_threaded_cpu backend uses one thread; the run asks for "
                               f"threads_per_task {threads} (use threads_per_task [1] for genn)")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"spikescale-genn-{self.spec['run_id']}-"))
        # optimize_code: GeNN compiles with optimisation (without, a run is many times slower)
        self.model = self.genn.GeNNModel(s["precision"], "pd14", backend=self.backend_name,
                                         optimize_code=bool(s["optimize_code"]))
        self.model.dt = self.dt_ms
        self.model.seed = int(self.spec["seed"])  # GeNN's generator: drive, thalamus, device-side draws
        self.model.timing_enabled = True
        # one buffer of dendritic delays per target population instead of one per projection
        self.model.fuse_postsynaptic_models = True
        self.model.default_narrow_sparse_ind_enabled = True

    def versions(self) -> dict:
        s = self.settings
        out = {"pygenn": self.genn.__version__, "genn_backend": self.backend_name, "genn_precision": s["precision"],
               "genn_connectivity": "procedural" if s["procedural_connectivity"] else s["connectivity"]}
        if self.backend_name == "cuda":
            out.update(gpu_provenance())
        return out

    # --- construction -----------------------------------------------------------------
    def create(self) -> None:
        self.handles = genn_builder.create(self.genn, self.model, self.network, self.rng, dt_ms=self.dt_ms,
                                           record_spikes=bool(self.spec["record_spikes"]))

    def connect(self) -> None:
        genn_builder.connect(self.genn, self.network, self.handles, self.rng, dt_ms=self.dt_ms,
                             connectivity=self.settings["connectivity"],
                             procedural=bool(self.settings["procedural_connectivity"]))

    def compile(self) -> None:
        """GeNN's code generation and compilation (make, in the run's directory)."""
        self.model.build(path_to_model=str(self.workdir))

    def load(self) -> None:
        """Allocation, initialisation (GeNN's init kernels) and the upload of host-drawn state."""
        if self.spec["record_spikes"]:
            # GeNN reads its recording buffer back only when the step count is a multiple of
            # the buffer's length: one that divides both phases
            steps = [self._steps(self.spec["t_presim_ms"]), self._steps(self.spec["t_sim_ms"])]
            self._record_steps = math.gcd(*steps)
            self.model.load(num_recording_timesteps=self._record_steps)
        else:
            self.model.load()
        self._timers_before = self._genn_timers()
        self._timers_phase = dict(self._timers_before)  # the initialisation

    def _steps(self, t_ms: float) -> int:
        return round(float(t_ms) / self.dt_ms)

    # --- simulation ---------------------------------------------------------------------
    def simulate(self, t_ms: float, progress=None) -> None:
        n_steps = self._steps(t_ms)
        report_every = max(1, n_steps // 10)
        model = self.model
        for done in range(1, n_steps + 1):
            model.step_time()
            if self._record_steps and model.timestep % self._record_steps == 0:
                self._pull_recording()
            if progress is not None and done % report_every == 0 and n_steps >= 10_000:
                progress(done * self.dt_ms, n_steps * self.dt_ms)
        now = genn_builder.spike_counts(self.handles)
        self._spikes_last, self._spikes_before = now - self._spikes_before, now
        timers = self._genn_timers()
        self._timers_phase = {k: v - self._timers_before.get(k, 0.0) for k, v in timers.items()}
        self._timers_before = timers

    def _pull_recording(self) -> None:
        self.model.pull_recording_buffers_from_device()
        for p, (ids, times) in enumerate(genn_builder.recorded_spikes(self.handles, self.dt_ms)):
            self._recorded[p].append((ids, times))

    def _genn_timers(self) -> dict:
        return {name: float(getattr(self.model, name)) for name in GENN_TIMERS}

    def kernel_timers(self) -> dict:
        """GeNN's timers of the last phase (s): the initialisation after load, then each run."""
        return {f"time_{k}": v for k, v in self._timers_phase.items()}

    def spikes_in_last_simulate(self) -> int:
        return int(self._spikes_last)

    # --- collection ---------------------------------------------------------------------
    def counts(self) -> dict:
        n = int(self.handles.n_recurrent)
        self._cleanup()  # the program is loaded: its directory is no longer needed
        return {"n_neurons": int(self.network.n_neurons), "n_synapses_local": n, "n_connections_local": n,
                "n_virtual_processes": 1}

    def population_first_ids(self) -> list[int]:
        """Senders are numbered from 1 like NEST's node ids, population by population."""
        return [int(o) + 1 for o in genn_builder.population_offsets(self.network)]

    def spikes(self) -> dict:
        out = {}
        for p, (pop, first) in enumerate(zip(P.POPULATIONS, self.population_first_ids(), strict=True)):
            parts = self._recorded[p]
            ids = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, np.int64)
            times = np.concatenate([t for _, t in parts]) if parts else np.zeros(0)
            order = np.argsort(times, kind="stable")
            out[pop] = (ids[order] + first, times[order])
        self._cleanup()
        return out

    def _cleanup(self) -> None:
        if self.workdir is not None and os.environ.get("SPIKESCALE_KEEP_BUILD") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def release(self) -> None:
        """Unload the model (GeNN's memory) and remove the run's directory."""
        if self.model is not None and getattr(self.model, "_loaded", False):
            self.model.unload()
        self.model = self.handles = None
        self._cleanup()
