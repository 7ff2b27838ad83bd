"""SpiNNaker backend: PD14 through spikescale.models.pd14.pynn_builder on sPyNNaker 7.4 (PyNN 0.13), on a
board, or emulated in software when no board is reachable (spikescale.spinnaker.board
decides, following the machine config's fallback policy).

A run goes one of two ways, each a class sharing SpiNNakerBase (spinnaker_base.py):
- ``SpiNNakerBoard`` (spinnaker_board.py): sPyNNaker maps, loads and runs on the board;
- ``SpiNNakerEmulated`` (spinnaker_emulated.py): sPyNNaker maps onto a virtual board, and the
  emulator simulates what the board would hold, its time and energy modelled.
``SpiNNakerBackend``, what the harness gets, makes the choice in setup and hands every later
call to the member it chose.

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

from spikescale.backends.base import Backend, Capabilities, PlatformRecord
from spikescale.backends.spinnaker_base import ONE_PROCESS, SpiNNakerBase, spinnaker_settings, start_pynn
from spikescale.backends.spinnaker_board import SpiNNakerBoard
from spikescale.backends.spinnaker_emulated import SpiNNakerEmulated
from spikescale.spinnaker import board


class SpiNNakerBackend(Backend):
    """A SpiNNaker run before and after the board choice. The choice waits for setup, where
    the harness has MPI, the allocation and the energy meters up: a run refused for want of
    a board records them as any other failed run does."""

    name = "spinnaker"
    # As declared before the choice (a run that fails before it); the member's from then on.
    capabilities = Capabilities(platform="spinnaker", emulated=False, build_phases=True, mpi=False,
                                platform_record=True,
                                one_process_why=ONE_PROCESS)

    def __init__(self, spec: dict, context: dict | None = None):
        super().__init__(spec, context)
        self.member: SpiNNakerBase | None = None  # the board or the emulation, chosen in setup
        self.sim = None
        self.run_dir = None

    def capabilities_of_run(self) -> Capabilities:
        return self.member.capabilities if self.member is not None else self.capabilities

    def import_simulator(self) -> None:
        self.run_dir, self.sim = start_pynn(self.spec["run_id"])

    def setup(self) -> None:
        ranks = self.spec["nodes"] * self.spec["tasks_per_node"]
        if ranks != 1:
            raise RuntimeError(f"run asks for {ranks} MPI ranks; sPyNNaker runs from one host process")
        choice = board.choose(spinnaker_settings(self.context))
        member = SpiNNakerEmulated if choice.mode == "emulated" else SpiNNakerBoard
        self.member = member(self.spec, self.context, choice, sim=self.sim, run_dir=self.run_dir)
        self.member.setup()

    # --- from here on, the member does the run --------------------------------------------
    def versions(self) -> dict:
        return self.member.versions()

    def create(self) -> None:
        self.member.create()

    def connect(self) -> None:
        self.member.connect()

    def compile(self) -> None:
        self.member.compile()

    def load(self) -> None:
        self.member.load()

    def simulate(self, t_ms: float, progress=None) -> None:
        self.member.simulate(t_ms, progress)

    def kernel_timers(self) -> dict:
        return self.member.kernel_timers()

    def spikes_in_last_simulate(self) -> int:
        return self.member.spikes_in_last_simulate()

    def counts(self) -> dict:
        return self.member.counts()

    def population_first_ids(self) -> list[int]:
        return self.member.population_first_ids()

    def spikes(self) -> dict:
        return self.member.spikes()

    def platform_record(self) -> PlatformRecord:
        return self.member.platform_record()

    def platform_energy(self) -> dict | None:
        return self.member.platform_energy()

    def release(self) -> None:
        """The member ends sPyNNaker; before the choice sPyNNaker was never set up."""
        if self.member is not None:
            self.member.release()
