"""SpiNNaker backend: PD14 through spikescale.models.pd14.pynn_builder on sPyNNaker 7.4 (PyNN 0.13), on a
board, or emulated in software when no board is reachable (spikescale.spinnaker.board
decides, following the machine config's fallback policy).

Phases:
- setup: the board choice, the run's own sPyNNaker configuration, ``sim.setup``;
- create, connect: PyNN populations and projections (the synapses drawn with numpy);
- compile: sPyNNaker's mapping (partitioning, placement, routing, data generation). Emulated:
  a run on the virtual board of the configured version, whose mapping figures are kept. On a
  board, mapping happens inside the first ``sim.run`` and sPyNNaker's own stage timers
  separate it;
- load: emulated, the emulator takes the mapped network (weights in the units the mapping
  chose); the board's loading time is modelled. On a board, part of the first run;
- presimulate, simulate: the emulator's steps (measured wall time, modelled board time), or
  ``sim.run`` on the board;
- collect: spikes, counts, the mapping, modelled time and energy (emulated) or sPyNNaker's
  timers and provenance (board).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from spikescale.models.pd14 import connectivity, derived, pynn_builder
from spikescale.models.pd14 import params as P
from spikescale.schemas import complete
from spikescale.spinnaker import board, cost, mapping
from spikescale.spinnaker.emulator import Constants, Drive, Emulator, Projection

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


class SpiNNakerBackend:
    name = "spinnaker"
    platform = "spinnaker"
    PROGRESS_FROM_MS = 2000.0  # as NEST's backend: progress lines for long simulations only

    def __init__(self, run: dict, context: dict | None = None):
        self.run = run
        # the machine's spinnaker section, its schema defaults filled in (spikescale.schemas)
        self.settings = complete("machine", (context or {}).get("machine", {}))["spinnaker"]
        self.network = derived.derive(run["n_scaling"], run["k_scaling"], run["drive"], run["thalamic_input"],
                                      run.get("weight_factor", 1.0))
        self.offsets = connectivity.population_offsets(self.network)  # first neuron of each population
        self.rng = np.random.default_rng(int(run["seed"]))
        self.dt_ms = float(run["dt_ms"])
        self.total_steps = int(round((run["t_presim_ms"] + run["t_sim_ms"]) / self.dt_ms))
        self.sim = None
        self.handles = None
        self.choice: board.Choice | None = None
        self.run_dir: Path | None = None
        self.cfg_text = ""
        self.ended = False
        self.core_rows: list[dict] = []
        self.mapping_summary: dict = {}
        self.spynnaker_timers: dict = {}
        self.shifts = None
        self.max_delay_steps = 0
        self.sdram_bytes = 0
        self.emulator: Emulator | None = None
        self.modelled = {"load_s": 0.0, "presimulate_s": 0.0, "simulate_s": 0.0, "extract_s": 0.0}
        self._spikes_last = 0
        self._snapshots: dict = {}  # phase -> spikes per neuron and per background source at its end
        self._hw_spikes = None

    @property
    def emulated(self) -> bool:
        return self.choice is not None and self.choice.mode == "emulated"

    # --- set-up -----------------------------------------------------------------------
    def import_simulator(self) -> None:
        # The run directory first: it is removed at exit after sPyNNaker's own exit handlers
        # (registered by the import and later, so run first) have written into it.
        # SPIKESCALE_KEEP_BUILD=1 keeps it.
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"spikescale-spinnaker-{self.run['run_id']}-"))
        if os.environ.get("SPIKESCALE_KEEP_BUILD") != "1":
            atexit.register(shutil.rmtree, self.run_dir, True)
        import pyNN.spiNNaker as sim  # imported here so that its start-up counts as set-up time

        self.sim = sim

    def setup(self) -> None:
        ranks = self.run["nodes"] * self.run["tasks_per_node"]
        if ranks != 1:
            raise RuntimeError(f"run asks for {ranks} MPI ranks; sPyNNaker runs from one host process")
        self.choice = board.choose(self.settings)
        self.cfg_text = board.config_text(self.settings, self.choice.mode, self.run_dir)
        board.isolate(self.run_dir, self.cfg_text)
        with _in_directory(self.run_dir):
            self.sim.setup(timestep=self.dt_ms)

    def versions(self) -> dict:
        from importlib.metadata import version

        return {"sPyNNaker": version("sPyNNaker"), "PyNN": version("PyNN"),
                "spinnaker_mode": self.choice.mode if self.choice else ""}

    # --- construction -----------------------------------------------------------------
    def create(self) -> None:
        # On a board spikes are counted from the recording, so every hardware run records them
        # (the emulator counts without recording).
        record = bool(self.run["record_spikes"]) or not self.emulated
        self.handles = pynn_builder.create(self.sim, self.network, self.rng, record_spikes=record,
                                           neurons_per_core=int(self.settings["neurons_per_core"]))

    def connect(self) -> None:
        pynn_builder.connect(self.sim, self.network, self.handles, self.rng, dt_ms=self.dt_ms)

    def compile(self) -> None:
        """Emulated: map onto the virtual board (a 'run' without dynamics) and keep what the
        mapping made. On a board mapping is part of the first run (see presimulate)."""
        if not self.emulated:
            return
        from spynnaker.pyNN.data import SpynnakerDataView

        self.sim.run(float(self.run["t_presim_ms"]) + float(self.run["t_sim_ms"]))
        self._read_mapping(SpynnakerDataView)
        self.spynnaker_timers = mapping.category_timers_s(self.run_dir / "reports")
        self.sim.end()
        self.ended = True

    def _read_mapping(self, view) -> None:
        self.core_rows = mapping.cores(view)
        self.mapping_summary = mapping.summarise(view, self.core_rows)
        self.shifts = mapping.ring_buffer_shifts(self.handles.populations)
        self.max_delay_steps = mapping.max_delay_steps(self.handles.populations)
        self.sdram_bytes = mapping.sdram_bytes(view, self.total_steps)
        self.machine_version = view.get_machine_version()

    def load(self) -> None:
        """Emulated: the emulator takes the network as the board would hold it."""
        if not self.emulated:
            return
        net, h, dt = self.network, self.handles, self.dt_ms
        c = Constants.for_lif(dt_ms=dt, tau_m_ms=P.NEURON["tau_m_ms"], cm_nF=P.NEURON["C_m_pF"] / 1000.0,
                              tau_syn_ms=P.NEURON["tau_syn_ms"], tau_refrac_ms=P.NEURON["t_ref_ms"],
                              v_rest_mV=P.NEURON["E_L_mV"], v_reset_mV=P.NEURON["V_reset_mV"],
                              v_thresh_mV=P.NEURON["V_th_mV"])
        n = net.n_neurons
        shift_of_neuron = np.repeat(self.shifts, net.num_neurons, axis=0)
        rec = h.recurrent
        recurrent = Projection.build(n, n, rec.sources, rec.targets, rec.weights_pA / 1000.0,
                                     _steps(rec.delays_ms, dt), shift_of_neuron)
        drives = []
        if net.drive == "poisson":
            background = Projection.build(n, n, np.arange(n), np.arange(n),
                                          np.repeat(net.weight_ext_pA / 1000.0, n),
                                          np.full(n, _steps(np.array([P.DELAY_POISSON_MS]), dt)[0]), shift_of_neuron)
            drives.append(Drive(rate_per_step=np.repeat(net.poisson_rate_hz, net.num_neurons) * dt * 1e-3,
                                projection=background, one_to_one=True))
        if h.thalamic is not None:
            th = P.THALAMUS
            thalamic = Projection.build(th["num_neurons"], n, h.thalamic.sources, h.thalamic.targets,
                                        h.thalamic.weights_pA / 1000.0, _steps(h.thalamic.delays_ms, dt),
                                        shift_of_neuron)
            start = int(round(th["start_ms"] / dt))
            drives.append(Drive(rate_per_step=np.full(th["num_neurons"], th["rate_hz"] * dt * 1e-3),
                                projection=thalamic, start_step=start,
                                stop_step=start + int(round(th["duration_ms"] / dt))))
        self.emulator = Emulator(c, v_init_mV=h.v_init_mV, i_offset_nA=np.repeat(net.dc_amp_pA, net.num_neurons) / 1000.0,
                                 recurrent=recurrent, shifts=shift_of_neuron, drives=drives,
                                 max_delay_steps=self.max_delay_steps, seed=int(self.run["seed"]) + 1,
                                 record_spikes=self.run["record_spikes"])
        self.modelled["load_s"] = cost.transfer_time_s(self.sdram_bytes, float(self.settings["load_mb_per_s"]))

    # --- simulation ---------------------------------------------------------------------
    def simulate(self, t_ms: float, progress=None) -> None:
        # the harness presimulates first (when t_presim_ms > 0), then simulates
        phase = "presimulate" if self.run["t_presim_ms"] > 0 and "presimulate" not in self._snapshots else "simulate"
        n_steps = int(round(t_ms / self.dt_ms))
        if t_ms < self.PROGRESS_FROM_MS:
            progress = None  # short runs are not worth ten lines of progress
        if self.emulated:
            before = self.emulator.spikes_total
            self.emulator.advance(n_steps, None if progress is None else
                                  (lambda done, total: progress(done * self.dt_ms, total * self.dt_ms)))
            self._spikes_last = self.emulator.spikes_total - before
            self.modelled[f"{phase}_s"] = cost.run_time_s(n_steps, self.dt_ms, float(self.settings["time_scale_factor"]))
            self._snapshots[phase] = (self.emulator.spikes_per_neuron.copy(),
                                      [d.copy() for d in self.emulator.source_spikes],
                                      [d.copy() for d in self.emulator.source_packets])
        else:
            try:
                self.sim.run(t_ms)
            except Exception as exc:
                where = self.settings.get("machine_name") or self.settings.get("spalloc_server")
                raise RuntimeError(
                    f"sPyNNaker could not run on the SpiNNaker hardware at {where} ({self.choice.reason}): "
                    f"{type(exc).__name__}: {exc}. Its reports are in {self.run_dir / 'reports'} while the run lasts "
                    "(SPIKESCALE_KEEP_BUILD=1 keeps them); check the board with sPyNNaker alone, or set "
                    "spinnaker.fallback to emulate") from exc
            self._snapshots[phase] = None
            if phase == "simulate":
                _, times = self._board_spikes()
                self._spikes_last = int(np.count_nonzero(times > float(self.run["t_presim_ms"]) + 1e-9))

    def kernel_timers(self) -> dict:
        """Emulated: the board's modelled run time of the last simulation (s), labelled; on a
        board: sPyNNaker's stage timers so far."""
        if self.emulated:
            return {"time_modelled_run_s": self.modelled["simulate_s"] or self.modelled["presimulate_s"],
                    "time_modelled_load_s": self.modelled["load_s"]}
        return dict(self.spynnaker_timers)

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

    def spikes(self) -> dict:
        """(senders, times_ms) per population in NEST's conventions: senders numbered from 1
        over the whole network, a spike of step k stamped (k + 1) dt, the end of its step."""
        if self.emulated:
            ids, steps = self.emulator.spikes()
            times = (steps + 1) * self.dt_ms
        else:
            ids, times = self._board_spikes()
        out = {}
        for p, name in enumerate(P.POPULATIONS):
            sel = (ids >= self.offsets[p]) & (ids < self.offsets[p] + int(self.network.num_neurons[p]))
            out[name] = (ids[sel] + 1, times[sel])
        return out

    def _board_spikes(self):
        if self._hw_spikes is None:
            ids, times = [], []
            for p, pop in enumerate(self.handles.populations):
                for train in pop.get_data("spikes").segments[0].spiketrains:
                    t = np.asarray(train.magnitude, dtype=np.float64)
                    ids.append(np.full(t.size, self.offsets[p] + int(train.annotations["source_index"]), dtype=np.int64))
                    times.append(t + self.dt_ms)  # sPyNNaker stamps the step's start
            self._hw_spikes = (np.concatenate(ids) if ids else np.empty(0, np.int64),
                               np.concatenate(times) if times else np.empty(0))
        return self._hw_spikes

    def _finish_board(self) -> dict:
        """On a board: sPyNNaker's stage timers and energy report, then sPyNNaker ends."""
        if self.emulated or self.ended:
            return {}
        self.spynnaker_timers = mapping.category_timers_s(self.run_dir / "reports")
        from spynnaker.pyNN.data import SpynnakerDataView

        self._read_mapping(SpynnakerDataView)
        self.sim.end()
        self.ended = True
        reports = sorted((self.run_dir / "reports").rglob("*energy*.rpt"))
        return {"spynnaker_energy_report": "\n".join(r.read_text(errors="replace") for r in reports)}

    def platform_record(self) -> dict:
        """The run's SpiNNaker subtree: how it was chosen and configured, what the mapping
        made, and (emulated) the modelled times, the real-time estimate and the emulator's
        own counts. Scalars in attrs (copied to the run's summary), the core table beside."""
        board_extra = self._finish_board()
        attrs = {**board_extra, "platform_mode": self.choice.mode if self.choice else "", "platform_reason":
                 self.choice.reason if self.choice else "", "emulated": self.emulated,
                 "spynnaker_cfg": self.cfg_text, **self.mapping_summary, **self.spynnaker_timers}
        tree: dict = {"attrs": attrs}
        if self.emulated and self.emulator is not None:
            tsf = float(self.settings["time_scale_factor"])
            n_extract = self._recorded_bytes() if self.run["record_spikes"] else 0
            self.modelled["extract_s"] = cost.transfer_time_s(n_extract, float(self.settings["extract_mb_per_s"]))
            t_model_s = float(self.run["t_sim_ms"]) / 1000.0
            attrs.update({"t_sim_modelled_s": self.modelled["simulate_s"],
                          "t_presim_modelled_s": self.modelled["presimulate_s"],
                          "t_load_modelled_s": self.modelled["load_s"], "t_extract_modelled_s": self.modelled["extract_s"],
                          "rtf_modelled": self.modelled["simulate_s"] / t_model_s if t_model_s else None,
                          "spinnaker_sdram_bytes": int(self.sdram_bytes),
                          "spinnaker_ring_buffer_saturations": int(self.emulator.saturated_slots),
                          "spinnaker_max_delay_steps": int(self.max_delay_steps),
                          "spinnaker_load_mb_per_s": float(self.settings["load_mb_per_s"]),
                          "spinnaker_extract_mb_per_s": float(self.settings["extract_mb_per_s"])})
            attrs.update(cost.realtime_estimate(self._events_per_core_s(), tsf))
            tree["ring_buffer_shifts"] = np.asarray(self.shifts, dtype=np.int64)
        if self.core_rows:
            tree["cores"] = {key: np.array([r[key] for r in self.core_rows], dtype=str if key in ("kind", "label")
                                            else np.int64) for key in ("kind", "label", "x", "y", "p", "lo_atom",
                                                                       "hi_atom", "route_chips")}
        return {"platform": tree}

    def _recorded_bytes(self) -> int:
        """What a board would send back of the recorded spikes: sPyNNaker records them as a
        bit field per neuron core and step (a time word plus one bit per neuron, in 32-bit
        words), whether or not a neuron spiked."""
        per_step = sum(4 + 4 * -(-(r["hi_atom"] - r["lo_atom"] + 1) // 32) for r in self.core_rows
                       if r["kind"] == mapping.NEURON_CORE)
        return int(per_step * self.total_steps)

    def _events_per_core_s(self) -> np.ndarray:
        """Synaptic events per second of model time received by the neurons of each neuron
        core during the simulation phase (recurrent, background and thalamic)."""
        sim_spikes, sim_sources, _ = self._phase_delta("simulate")
        received = np.zeros(self.network.n_neurons)
        rec = self.handles.recurrent
        np.add.at(received, rec.targets, sim_spikes[rec.sources])
        if self.network.drive == "poisson":
            received += sim_sources[0]
        if self.handles.thalamic is not None:
            np.add.at(received, self.handles.thalamic.targets, sim_sources[-1][self.handles.thalamic.sources])
        t_s = float(self.run["t_sim_ms"]) / 1000.0
        return np.asarray([received[self._atoms(row)].sum() / t_s for row in self.core_rows
                           if row["kind"] == mapping.NEURON_CORE])

    def _atoms(self, row: dict, population: str | None = None) -> slice:
        """The network's neurons (or background sources: one per neuron) a core holds; its
        population from its label unless given."""
        first = int(self.offsets[P.POPULATIONS.index(population or row["label"])])
        return slice(first + row["lo_atom"], first + row["hi_atom"] + 1)

    def _phase_delta(self, phase: str):
        """Spikes per neuron, per source and background packets per source during one phase."""
        now = self._snapshots[phase]
        before = self._snapshots.get("presimulate") if phase == "simulate" else None
        if before is None:
            return now
        return (now[0] - before[0], [a - b for a, b in zip(now[1], before[1])],
                [a - b for a, b in zip(now[2], before[2])])

    def platform_energy(self) -> dict | None:
        """The board's modelled energy per phase, as one energy meter (kind modelled),
        from SpiNNFrontEndCommon's own model; None on a board (its own report is kept)."""
        if not self.emulated or self.emulator is None:
            return None
        tsf = float(self.settings["time_scale_factor"])
        attrs = {"source": "spinnaker-model", "scope": "board", "kind": "modelled", "covers": "platform",
                 "description": (f"SpiNNFrontEndCommon energy model, SpiNN-{self.settings['version']} constants, "
                                 f"{self.mapping_summary['spinnaker_chips_used']} chips and "
                                 f"{self.mapping_summary['spinnaker_cores_used']} cores of "
                                 f"{self.mapping_summary['spinnaker_boards']} board(s), time_scale_factor {tsf:g}")}
        n_chips, n_boards = self.mapping_summary["spinnaker_machine_chips"], self.mapping_summary["spinnaker_boards"]
        for phase in ("presimulate", "simulate"):
            if phase not in self._snapshots:
                continue
            packets = cost.router_packets(self.core_rows, self._spikes_by_core(*self._phase_delta(phase)))
            parts = cost.energy_j(self.machine_version, n_chips=n_chips, n_boards=n_boards, core_rows=self.core_rows,
                                  exec_s=self.modelled[f"{phase}_s"], load_s=0.0, extract_s=0.0, packets=packets)
            attrs[f"energy_{phase}_j"] = parts["exec_j"]
            attrs[f"t_{phase}_s"] = self.modelled[f"{phase}_s"]
            attrs[f"packets_{phase}"] = int(sum(sum(k.values()) for k in packets.values()))
        transfer = cost.energy_j(self.machine_version, n_chips=n_chips, n_boards=n_boards, core_rows=self.core_rows,
                                 exec_s=0.0, load_s=self.modelled["load_s"], extract_s=self.modelled["extract_s"],
                                 packets={})
        attrs["energy_load_j"], attrs["energy_collect_j"] = transfer["load_j"], transfer["extract_j"]
        return {"attrs": attrs}

    def _spikes_by_core(self, spikes_per_neuron, spikes_per_source, packets_per_source) -> dict[int, int]:
        """Packets each core sends: a neuron core one per spike of its neurons; a Poisson
        source core one per source and step with at least one spike (the count travels in
        the packet's payload)."""
        out = {}
        for index, row in enumerate(self.core_rows):
            if row["kind"] == mapping.NEURON_CORE:
                out[index] = int(spikes_per_neuron[self._atoms(row)].sum())
            elif row["kind"] == mapping.SOURCE_CORE and row["label"].endswith("_background"):
                out[index] = int(packets_per_source[0][self._atoms(row, row["label"].removesuffix("_background"))].sum())
            elif row["kind"] == mapping.SOURCE_CORE and row["label"] == "thalamus":
                out[index] = int(packets_per_source[-1][row["lo_atom"]:row["hi_atom"] + 1].sum())
        return out

    def release(self) -> None:
        """End sPyNNaker if it still runs (the run directory goes at exit)."""
        if self.sim is not None and not self.ended and self.choice is not None:
            with contextlib.suppress(Exception):
                self.sim.end()
            self.ended = True


def _steps(delays_ms: np.ndarray, dt_ms: float) -> np.ndarray:
    """sPyNNaker's conversion of a delay to steps: rint(delay / dt) (synapse_io)."""
    return np.rint(np.asarray(delays_ms) / dt_ms).astype(np.int64)
