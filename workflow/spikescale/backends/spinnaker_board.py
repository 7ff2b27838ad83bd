"""A SpiNNaker run on a board (spikescale.backends.spinnaker): sPyNNaker maps, loads and
runs the network in its first ``sim.run``; its own stage timers separate those steps, and
its energy report is kept in the record."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikescale.backends.base import Capabilities, PlatformRecord
from spikescale.backends.spinnaker_base import ONE_PROCESS, SpiNNakerBase
from spikescale.spinnaker import board, mapping


class SpiNNakerBoard(SpiNNakerBase):
    # compile and load stay (empty) phases: on a board they happen inside the first run, and
    # runs.csv keeps one set of columns for both members
    capabilities = Capabilities(platform="spinnaker", emulated=False, build_phases=True, mpi=False,
                                platform_record=True,
                                one_process_why=ONE_PROCESS)

    def __init__(self, spec: dict, context: dict | None, choice: board.Choice, *, sim=None,
                 run_dir: Path | None = None):
        super().__init__(spec, context, choice, sim=sim, run_dir=run_dir)
        self._spikes_read = None  # (ids, times) of every recorded spike, read once

    def _records_spikes(self) -> bool:
        # spikes are counted from the recording on a board, so every run records them
        return True

    def compile(self) -> None:
        """Nothing apart: mapping is part of the first run on a board."""

    def load(self) -> None:
        """Nothing apart: loading is part of the first run on a board."""

    def simulate(self, t_ms: float, progress=None) -> None:
        phase = self._next_simulation()
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
            _, times = self._spike_ids_and_times()
            self._spikes_last = int(np.count_nonzero(times > float(self.spec["t_presim_ms"]) + 1e-9))

    def kernel_timers(self) -> dict:
        """sPyNNaker's stage timers so far."""
        return dict(self.spynnaker_timers)

    def _spike_ids_and_times(self) -> tuple[np.ndarray, np.ndarray]:
        if self._spikes_read is None:
            ids, times = [], []
            for p, pop in enumerate(self.handles.populations):
                for train in pop.get_data("spikes").segments[0].spiketrains:
                    t = np.asarray(train.magnitude, dtype=np.float64)
                    neuron = self.offsets[p] + int(train.annotations["source_index"])
                    ids.append(np.full(t.size, neuron, dtype=np.int64))
                    times.append(t + self.dt_ms)  # sPyNNaker stamps the step's start
            self._spikes_read = (np.concatenate(ids) if ids else np.empty(0, np.int64),
                                 np.concatenate(times) if times else np.empty(0))
        return self._spikes_read

    def _finish(self) -> str | None:
        """sPyNNaker's stage timers and mapping, then sPyNNaker ends; its energy report (None
        when it has ended already)."""
        if self.ended:
            return None
        self.spynnaker_timers = mapping.category_timers_s(self.run_dir / "reports")
        from spynnaker.pyNN.data import SpynnakerDataView

        self._read_mapping(SpynnakerDataView)
        self.sim.end()
        self.ended = True
        reports = sorted((self.run_dir / "reports").rglob("*energy*.rpt"))
        return "\n".join(r.read_text(errors="replace") for r in reports)

    def platform_record(self) -> PlatformRecord:
        """As the family's, with sPyNNaker's timers, its mapping and its energy report (the
        record only: a text)."""
        report = self._finish()
        record = super().platform_record()
        if report is not None:
            record.record_attrs["spynnaker_energy_report"] = report
        return record
