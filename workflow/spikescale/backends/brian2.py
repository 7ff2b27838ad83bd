"""Brian2 backend: PD14 through spikescale.models.pd14.brian2_builder on the cpp_standalone device
(generated C++, OpenMP threads = threads_per_task).

Brian2's standalone device turns the whole script into one C++ program, built and run at
the end; the harness's phases map onto it like this:

- setup, create, connect: Brian2 objects in Python; the connectivity is drawn with numpy.
- compile: both runs (presimulation and simulation) are declared, then code generation and
  compilation (``device.build(run=False)``), in a build directory inside a per-run
  temporary directory (under $TMPDIR), removed when the run is collected.
- load: the program starts, loads its arrays, creates the synapses and sets the initial
  state, then stops at a marker (code inserted with ``device.insert_code``).
- presimulate, simulate: each is one ``run()`` inside the program, started by a line on its
  standard input; it answers with its own time for the run (Brian2's
  ``Network::_last_run_time``, the kernel timer kept as ``time_simulate``) and the spikes
  counted so far. The harness's wall time of the phase is therefore the simulation itself:
  no code generation, compilation or loading.
- collect: the program writes its results and ends; monitors and counts are read back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from spikescale.backends.base import Backend, Capabilities
from spikescale.models.pd14 import brian2_builder
from spikescale.models.pd14 import params as P

MARKER = "@spikescale"
ONE_PROCESS = "Brian2 runs on one process (threads or one GPU, no MPI)"  # for the configuration check


def _marker_code(what: str, counter_array: str, timers: tuple[str, ...] = ()) -> str:
    """C++ for main(): report `what` with the last run's time, the spike count and the
    given timers, then wait for one line on standard input before going on."""
    extra = "".join(f' << " {t}=" << {t}' for t in timers)
    return (f'std::cout << "{MARKER} {what} " << Network::_last_run_time << " " << brian::{counter_array}[0]'
            f"{extra} << std::endl;\n"
            "{ std::string _spikescale_line; if (!std::getline(std::cin, _spikescale_line)) return 3; }\n")


class Brian2Backend(Backend):
    name = "brian2"
    capabilities = Capabilities(platform="cpu", emulated=False, build_phases=True, mpi=False,
                                one_process_why=ONE_PROCESS)
    device_name = "cpp_standalone"

    def __init__(self, spec: dict, context: dict | None = None):
        super().__init__(spec, context)
        self.b2 = None
        self.handles = None
        self.rng = np.random.default_rng(int(spec["seed"]))
        self.workdir: Path | None = None
        self.proc = None
        self._stdout_lines: list[str] = []
        self._pending: list[float] = []  # model time (ms) of each run declared in the program, in order
        self._last = {"run_time_s": None, "spikes": 0, "timers": {}}
        self._spikes_last = 0
        self._phase_timers: dict = {}
        self._collected = None

    # --- set-up -----------------------------------------------------------------------
    def import_simulator(self) -> None:
        import brian2  # imported here so that its start-up counts as set-up time

        self.b2 = brian2

    def _check_ranks(self) -> None:
        ranks = self.spec["nodes"] * self.spec["tasks_per_node"]
        if ranks != 1:
            raise RuntimeError(f"run asks for {ranks} MPI ranks; Brian2 runs on one process (threads only)")

    def setup(self) -> None:
        self._check_ranks()
        b2 = self.b2
        self.workdir = Path(tempfile.mkdtemp(prefix=f"spikescale-{self.name}-{self.spec['run_id']}-"))
        b2.prefs.logging.file_log = False
        b2.prefs.logging.save_script = False
        self._set_device()
        b2.defaultclock.dt = float(self.spec["dt_ms"]) * b2.units.ms
        self._seed_run_time()

    def _seed_run_time(self) -> None:
        """Brian2's generator (the background spikes) from the run's seed."""
        self.b2.seed(int(self.spec["seed"]))

    def _set_device(self) -> None:
        b2 = self.b2
        threads = int(self.spec["threads_per_task"])
        b2.set_device("cpp_standalone", build_on_run=False, directory=str(self.workdir / "build"))
        b2.prefs.devices.cpp_standalone.openmp_threads = threads
        # make -j without a number starts every compiler at once: keep to the run's cores
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{threads}"]

    def versions(self) -> dict:
        return {"brian2": self.b2.__version__, "brian2_device": self.device_name,
                "brian2_openmp_threads": int(self.spec["threads_per_task"])}

    # --- construction -----------------------------------------------------------------
    def create(self) -> None:
        self.handles = brian2_builder.create(self.b2, self.network, self.rng, dt_ms=float(self.spec["dt_ms"]),
                                             record_spikes=self.spec["record_spikes"])

    def connect(self) -> None:
        brian2_builder.connect(self.b2, self.network, self.handles, self.rng, dt_ms=float(self.spec["dt_ms"]))

    def _spike_monitor(self):
        return self.handles.spike_monitor if self.handles.spike_monitor is not None else self.handles.spike_counter

    def compile(self) -> None:
        """Declare the presimulation and the simulation, generate and compile the program."""
        b2, h = self.b2, self.handles
        self.net = b2.Network(*h.objects)
        self._counter_array = b2.get_device().get_array_name(self._spike_monitor().variables["N"])
        self._declare_runs()
        self._build()

    def _declare_runs(self) -> None:
        """Two runs in the program, each followed by a marker; the spike counter (performance
        runs) is active during the simulation only."""
        b2, h, device = self.b2, self.handles, self.b2.get_device()
        ms = b2.units.ms
        if h.spike_counter is not None:
            h.spike_counter.active = False
        device.insert_code("main", _marker_code("loaded", self._counter_array))
        if self.spec["t_presim_ms"] > 0:
            self.net.run(float(self.spec["t_presim_ms"]) * ms)
            device.insert_code("main", _marker_code("presimulated", self._counter_array))
            self._pending.append(float(self.spec["t_presim_ms"]))
        if h.spike_counter is not None:
            h.spike_counter.active = True
        self.net.run(float(self.spec["t_sim_ms"]) * ms)
        device.insert_code("main", _marker_code("simulated", self._counter_array))
        self._pending.append(float(self.spec["t_sim_ms"]))

    def _build(self) -> None:
        self.b2.get_device().build(directory=str(self.workdir / "build"), compile=True, run=False, with_output=False)

    def _command(self) -> tuple[list[str], dict]:
        """The program's command line and environment, as Brian2's device.run() makes them."""
        b2 = self.b2
        device = b2.get_device()
        run_cmd = b2.prefs.devices.cpp_standalone.run_cmd_unix
        run_cmd = [run_cmd] if isinstance(run_cmd, str) else list(run_cmd)
        os.makedirs(device.results_dir, exist_ok=True)
        env = dict(os.environ)
        env.update(b2.prefs["devices.cpp_standalone.run_environment_variables"])
        env.update(device.run_environment_variables)
        return run_cmd + ["--results_dir", device.results_dir], env

    def load(self) -> None:
        """Start the program: it loads its arrays and initial state, then waits."""
        cmd, env = self._command()
        self._stderr = open(self.workdir / "stderr.txt", "w+")
        self.proc = subprocess.Popen(cmd, cwd=self.b2.get_device().project_dir, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self._await("loaded")
        self._phase_timers = dict(self._last["timers"])  # GeNN: its initialisation

    def _await(self, what: str) -> None:
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                _, got, run_time, spikes, *timers = line.split()
                if got != what:
                    raise RuntimeError(f"the {self.name} program reported {got!r}, expected {what!r}")
                self._last = {"run_time_s": float(run_time), "spikes": int(float(spikes)),
                              "timers": {k: float(v) for k, v in (t.split("=", 1) for t in timers)}}
                return
            self._stdout_lines.append(line.rstrip("\n"))
        code = self.proc.wait()
        self._stderr.seek(0)
        tail = "".join(self._stderr.readlines()[-20:]) + "\n".join(self._stdout_lines[-20:])
        raise RuntimeError(f"the {self.name} program ended (exit status {code}) before reporting {what!r}: {tail}")

    def _go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    # --- simulation ---------------------------------------------------------------------
    def simulate(self, t_ms: float, progress=None) -> None:
        """Run the next run declared in the program (its model time must be t_ms)."""
        if not self._pending or abs(self._pending[0] - t_ms) > 1e-9:
            raise RuntimeError(f"the program has no run of {t_ms} ms next (declared: {self._pending})")
        self._pending.pop(0)
        before = self._last
        self._go()
        self._await("presimulated" if self._pending else "simulated")
        self._spikes_last = self._last["spikes"] - before["spikes"]
        # the program's timers (GeNN's kernel timers) add up over the program: per phase,
        # the difference
        self._phase_timers = {k: v - before["timers"].get(k, 0.0) for k, v in self._last["timers"].items()}

    def kernel_timers(self) -> dict:
        """time_simulate: the program's own time of the last run (s, Brian2's
        Network::_last_run_time); 0 before any run."""
        t = self._last["run_time_s"]
        if t is None:
            return {"time_simulate": 0.0}
        return {"time_simulate": float(t), **{f"time_{k}": v for k, v in self._phase_timers.items()}}

    def spikes_in_last_simulate(self) -> int:
        return int(self._spikes_last)

    # --- collection ---------------------------------------------------------------------
    def _finish(self) -> dict:
        """Let the program write its results and end; read what the record needs, then
        remove the per-run directory."""
        if self._collected is not None:
            return self._collected
        self._go()
        out, _ = self.proc.communicate(timeout=3600)
        self._stdout_lines += out.splitlines()
        if self.proc.returncode != 0:
            self._stderr.seek(0)
            raise RuntimeError(f"the {self.name} program failed at the end (exit status {self.proc.returncode}): "
                               + self._stderr.read()[-2000:])
        device = self.b2.get_device()
        device.has_been_run = True
        h = self.handles
        collected = {"n_synapses": int(sum(len(s) for s in h.recurrent))}
        if h.spike_monitor is not None:
            collected["spikes"] = brian2_builder.spikes_by_population(h, self.network, float(self.spec["dt_ms"]))
        self._collected = collected
        self._cleanup()
        return collected

    def _cleanup(self) -> None:
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            self._stderr = None
        if self.workdir is not None and os.environ.get("SPIKESCALE_KEEP_BUILD") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def release(self) -> None:
        """End the program if it still runs and remove the per-run directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.handles = None
        self._cleanup()

    def counts(self) -> dict:
        c = self._finish()
        return {"n_neurons": int(self.network.n_neurons), "n_synapses_local": c["n_synapses"],
                "n_connections_local": c["n_synapses"], "n_virtual_processes": int(self.spec["threads_per_task"])}

    def population_first_ids(self) -> list[int]:
        """Senders are numbered from 1 like NEST's node ids (brian2_builder)."""
        return [int(o) + 1 for o in brian2_builder.population_offsets(self.network)]

    def spikes(self) -> dict:
        return dict(zip(P.POPULATIONS, self._finish()["spikes"], strict=True))
