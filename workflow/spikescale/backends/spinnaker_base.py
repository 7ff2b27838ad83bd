"""What a SpiNNaker run on a board and an emulated one share (spikescale.backends.spinnaker):
sPyNNaker's configuration and set-up in the run's own directory, the PyNN network, the
mapping's figures, counts, spikes in NEST's conventions and the record's platform subtree."""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from spikescale.backends.base import Backend, PlatformRecord
from spikescale.models.pd14 import connectivity, pynn_builder
from spikescale.models.pd14 import params as P
from spikescale.schemas import complete
from spikescale.spinnaker import board, mapping

# Why no run has several MPI ranks (the configuration check says it; Capabilities.one_process_why).
ONE_PROCESS = "sPyNNaker runs from one host process (the board, or the emulator, does the work)"


@contextlib.contextmanager
def _in_directory(path: Path):
    """sPyNNaker also reads ./spynnaker.cfg on top of the user configuration: start it in
    the run directory, where there is none but the run's own."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def spinnaker_settings(context: dict | None) -> dict:
    """The machine's spinnaker section, its schema defaults filled in (spikescale.schemas)."""
    return complete("machine", (context or {}).get("machine", {}))["spinnaker"]


def start_pynn(run_id: str):
    """The run's own directory and PyNN's sPyNNaker front end, imported (its start-up counts
    as set-up time). The run directory first: it is removed at exit after sPyNNaker's own
    exit handlers (registered by the import and later, so run first) have written into it.
    SPIKESCALE_KEEP_BUILD=1 keeps it."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"spikescale-spinnaker-{run_id}-"))
    if os.environ.get("SPIKESCALE_KEEP_BUILD") != "1":
        atexit.register(shutil.rmtree, run_dir, True)
    import pyNN.spiNNaker as sim

    return run_dir, sim


class SpiNNakerBase(Backend):
    """A SpiNNaker run once the board choice is made (spikescale.spinnaker.board): the
    members SpiNNakerBoard and SpiNNakerEmulated add how each simulates. A member may be
    handed sPyNNaker already imported (sim, run_dir: see SpiNNakerBackend)."""

    name = "spinnaker"

    def __init__(self, spec: dict, context: dict | None, choice: board.Choice, *, sim=None,
                 run_dir: Path | None = None):
        super().__init__(spec, context)
        self.settings = spinnaker_settings(context)
        self.choice = choice
        self.offsets = connectivity.population_offsets(self.network)  # first neuron of each population
        self.rng = np.random.default_rng(int(spec["seed"]))
        self.dt_ms = float(spec["dt_ms"])
        self.total_steps = int(round((spec["t_presim_ms"] + spec["t_sim_ms"]) / self.dt_ms))
        self.sim = sim
        self.handles = None
        self.run_dir = run_dir
        self.cfg_text = ""
        self.set_up = False  # setup() started: sPyNNaker may hold resources from then on
        self.ended = False
        self.core_rows: list[dict] = []
        self.mapping_summary: dict = {}
        self.spynnaker_timers: dict = {}
        self.shifts = None
        self.max_delay_steps = 0
        self.sdram_bytes = 0
        self.machine_version = None
        self._spikes_last = 0
        # phase -> what the emulator had counted at its end (None on a board): which
        # simulation comes next, and the emulated phases' own counts
        self._snapshots: dict = {}

    # --- set-up -----------------------------------------------------------------------
    def import_simulator(self) -> None:
        self.run_dir, self.sim = start_pynn(self.spec["run_id"])

    def setup(self) -> None:
        self.set_up = True
        self.cfg_text = board.config_text(self.settings, self.choice.mode, self.run_dir)
        board.isolate(self.run_dir, self.cfg_text)
        with _in_directory(self.run_dir):
            self.sim.setup(timestep=self.dt_ms)

    def versions(self) -> dict:
        from importlib.metadata import version

        return {"sPyNNaker": version("sPyNNaker"), "PyNN": version("PyNN"), "spinnaker_mode": self.choice.mode}

    # --- construction -----------------------------------------------------------------
    def _records_spikes(self) -> bool:
        """Whether sPyNNaker records the spikes (validation runs; a board always)."""
        return bool(self.spec["record_spikes"])

    def create(self) -> None:
        self.handles = pynn_builder.create(self.sim, self.network, self.rng, record_spikes=self._records_spikes(),
                                           neurons_per_core=int(self.settings["neurons_per_core"]))

    def connect(self) -> None:
        pynn_builder.connect(self.sim, self.network, self.handles, self.rng, dt_ms=self.dt_ms)

    def _read_mapping(self, view) -> None:
        self.core_rows = mapping.cores(view)
        self.mapping_summary = mapping.summarise(view, self.core_rows)
        self.shifts = mapping.ring_buffer_shifts(self.handles.populations)
        self.max_delay_steps = mapping.max_delay_steps(self.handles.populations)
        self.sdram_bytes = mapping.sdram_bytes(view, self.total_steps)
        self.machine_version = view.get_machine_version()

    # --- simulation ---------------------------------------------------------------------
    def _next_simulation(self) -> str:
        """The phase simulate() runs: the harness presimulates first (when t_presim_ms > 0),
        then simulates."""
        return "presimulate" if self.spec["t_presim_ms"] > 0 and "presimulate" not in self._snapshots else "simulate"

    def spikes_in_last_simulate(self) -> int:
        return int(self._spikes_last)

    # --- collection ---------------------------------------------------------------------
    def counts(self) -> dict:
        n_recurrent = len(self.handles.recurrent)
        n_background = self.network.n_neurons if self.network.drive == "poisson" else 0
        n_thalamic = len(self.handles.thalamic) if self.handles.thalamic is not None else 0
        return {"n_neurons": int(self.network.n_neurons), "n_synapses_local": int(n_recurrent),
                "n_connections_local": int(n_recurrent + n_background + n_thalamic), "n_virtual_processes": 1}

    def population_first_ids(self) -> list[int]:
        return [int(o) + 1 for o in self.offsets]

    @abc.abstractmethod
    def _spike_ids_and_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Every recorded spike: neuron index over the network (from 0) and time (ms, the
        end of the spike's step)."""

    def spikes(self) -> dict:
        """(senders, times_ms) per population in NEST's conventions: senders numbered from 1
        over the whole network, a spike of step k stamped (k + 1) dt, the end of its step."""
        ids, times = self._spike_ids_and_times()
        out = {}
        for p, name in enumerate(P.POPULATIONS):
            sel = (ids >= self.offsets[p]) & (ids < self.offsets[p] + int(self.network.num_neurons[p]))
            out[name] = (ids[sel] + 1, times[sel])
        return out

    def platform_record(self) -> PlatformRecord:
        """The run's SpiNNaker subtree: how it was chosen and configured and what the mapping
        made; scalars for the summary in summary_attrs, the configuration text apart, the
        core table beside."""
        record = PlatformRecord(
            summary_attrs={"platform_mode": self.choice.mode, "platform_reason": self.choice.reason,
                           **self.mapping_summary, **self.spynnaker_timers},
            # emulated: the harness puts the run's own value into the summary
            record_attrs={"emulated": self.capabilities.emulated, "spynnaker_cfg": self.cfg_text})
        if self.core_rows:
            record.arrays["cores"] = {
                key: np.array([r[key] for r in self.core_rows], dtype=str if key in ("kind", "label") else np.int64)
                for key in ("kind", "label", "x", "y", "p", "lo_atom", "hi_atom", "route_chips")}
        return record

    def release(self) -> None:
        """End sPyNNaker if it still runs (the run directory goes at exit)."""
        if self.sim is not None and self.set_up and not self.ended:
            with contextlib.suppress(Exception):
                self.sim.end()
            self.ended = True
