"""An emulated SpiNNaker run (spikescale.backends.spinnaker): sPyNNaker maps the network onto a
virtual board of the configured version, the fixed-point emulator (spikescale.spinnaker.emulator)
simulates what the board would hold, and the board's time and energy are modelled
(spikescale.spinnaker.cost) from the mapping and the emulator's counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikescale.backends.base import Capabilities, PlatformRecord
from spikescale.backends.spinnaker_base import ONE_PROCESS, SpiNNakerBase
from spikescale.models.pd14 import params as P
from spikescale.spinnaker import board, cost, mapping
from spikescale.spinnaker.emulator import Constants, Drive, Emulator, Projection


class SpiNNakerEmulated(SpiNNakerBase):
    capabilities = Capabilities(platform="spinnaker", emulated=True, build_phases=True, mpi=False,
                                platform_energy=True, platform_record=True,
                                one_process_why=ONE_PROCESS)
    PROGRESS_FROM_MS = 2000.0  # as NEST's backend: progress lines for long simulations only

    def __init__(self, spec: dict, context: dict | None, choice: board.Choice, *, sim=None,
                 run_dir: Path | None = None):
        super().__init__(spec, context, choice, sim=sim, run_dir=run_dir)
        self.emulator: Emulator | None = None
        self.modelled = {"load_s": 0.0, "presimulate_s": 0.0, "simulate_s": 0.0, "extract_s": 0.0}

    def compile(self) -> None:
        """Map onto the virtual board (a 'run' without dynamics) and keep what the mapping
        made."""
        from spynnaker.pyNN.data import SpynnakerDataView

        self.sim.run(float(self.spec["t_presim_ms"]) + float(self.spec["t_sim_ms"]))
        self._read_mapping(SpynnakerDataView)
        self.spynnaker_timers = mapping.category_timers_s(self.run_dir / "reports")
        self.sim.end()
        self.ended = True

    def load(self) -> None:
        """The emulator takes the network as the board would hold it."""
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
        self.emulator = Emulator(c, v_init_mV=h.v_init_mV,
                                 i_offset_nA=np.repeat(net.dc_amp_pA, net.num_neurons) / 1000.0, recurrent=recurrent,
                                 shifts=shift_of_neuron, drives=drives,
                                 max_delay_steps=self.max_delay_steps, seed=int(self.spec["seed"]) + 1,
                                 record_spikes=self.spec["record_spikes"])
        self.modelled["load_s"] = cost.transfer_time_s(self.sdram_bytes, float(self.settings["load_mb_per_s"]))

    # --- simulation ---------------------------------------------------------------------
    def simulate(self, t_ms: float, progress=None) -> None:
        phase = self._next_simulation()
        n_steps = int(round(t_ms / self.dt_ms))
        if t_ms < self.PROGRESS_FROM_MS:
            progress = None  # short runs are not worth ten lines of progress
        before = self.emulator.spikes_total
        self.emulator.advance(n_steps, None if progress is None else
                              (lambda done, total: progress(done * self.dt_ms, total * self.dt_ms)))
        self._spikes_last = self.emulator.spikes_total - before
        self.modelled[f"{phase}_s"] = cost.run_time_s(n_steps, self.dt_ms, float(self.settings["time_scale_factor"]))
        self._snapshots[phase] = (self.emulator.spikes_per_neuron.copy(),
                                  [d.copy() for d in self.emulator.source_spikes],
                                  [d.copy() for d in self.emulator.source_packets])

    def kernel_timers(self) -> dict:
        """The board's modelled run time of the last simulation (s), labelled."""
        return {"time_modelled_run_s": self.modelled["simulate_s"] or self.modelled["presimulate_s"],
                "time_modelled_load_s": self.modelled["load_s"]}

    # --- collection ---------------------------------------------------------------------
    def _spike_ids_and_times(self) -> tuple[np.ndarray, np.ndarray]:
        ids, steps = self.emulator.spikes()
        return ids, (steps + 1) * self.dt_ms

    def platform_record(self) -> PlatformRecord:
        """As the family's, with the modelled times, the real-time estimate and the
        emulator's own counts."""
        record = super().platform_record()
        if self.emulator is None:
            return record
        tsf = float(self.settings["time_scale_factor"])
        n_extract = self._recorded_bytes() if self.spec["record_spikes"] else 0
        self.modelled["extract_s"] = cost.transfer_time_s(n_extract, float(self.settings["extract_mb_per_s"]))
        t_model_s = float(self.spec["t_sim_ms"]) / 1000.0
        record.summary_attrs.update({
            "t_sim_modelled_s": self.modelled["simulate_s"], "t_presim_modelled_s": self.modelled["presimulate_s"],
            "t_load_modelled_s": self.modelled["load_s"], "t_extract_modelled_s": self.modelled["extract_s"],
            "rtf_modelled": self.modelled["simulate_s"] / t_model_s if t_model_s else None,
            "spinnaker_sdram_bytes": int(self.sdram_bytes),
            "spinnaker_ring_buffer_saturations": int(self.emulator.saturated_slots),
            "spinnaker_max_delay_steps": int(self.max_delay_steps),
            "spinnaker_load_mb_per_s": float(self.settings["load_mb_per_s"]),
            "spinnaker_extract_mb_per_s": float(self.settings["extract_mb_per_s"])})
        record.summary_attrs.update(cost.realtime_estimate(self._events_per_core_s(), tsf))
        record.arrays["ring_buffer_shifts"] = np.asarray(self.shifts, dtype=np.int64)
        return record

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
        t_s = float(self.spec["t_sim_ms"]) / 1000.0
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
        """The board's modelled energy per phase, as one energy meter (kind modelled), from
        SpiNNFrontEndCommon's own model; None before the emulator exists."""
        if self.emulator is None:
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
                population = row["label"].removesuffix("_background")
                out[index] = int(packets_per_source[0][self._atoms(row, population)].sum())
            elif row["kind"] == mapping.SOURCE_CORE and row["label"] == "thalamus":
                out[index] = int(packets_per_source[-1][row["lo_atom"]:row["hi_atom"] + 1].sum())
        return out


def _steps(delays_ms: np.ndarray, dt_ms: float) -> np.ndarray:
    """sPyNNaker's conversion of a delay to steps: rint(delay / dt) (synapse_io)."""
    return np.rint(np.asarray(delays_ms) / dt_ms).astype(np.int64)
