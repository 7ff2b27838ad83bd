"""The interface between the harness and a simulator backend.

The harness (spikescale.harness) times phases and writes the record; a backend builds and
simulates the network and answers questions about it. What a backend can do is declared
once, on its class, as ``Capabilities``: the harness reads them instead of probing for
methods, and the run's summary says where the run ran from them instead of the store
knowing backend names.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from spikescale.models.pd14 import derived

PLATFORMS = ("cpu", "gpu", "spinnaker")

# progress(done_ms, total_ms): model time simulated so far, for the log
Progress = Callable[[float, float], None]


@dataclass(frozen=True)
class Capabilities:
    """What a backend class can do and what it runs on."""

    platform: str  # what the run's figures are of: one of PLATFORMS
    emulated: bool  # that platform is emulated in software (its times and energy are modelled)
    build_phases: bool  # compile and load phases (spikescale.phases.BUILD_PHASES)
    mpi: bool  # runs with several MPI ranks; False: one process (threads at most)
    platform_energy: bool = False  # models the platform's own energy as a meter (platform_energy())
    platform_record: bool = False  # adds a platform subtree to the rank's record (platform_record())
    one_process_why: str = ""  # without MPI: why, for the configuration check that refuses ranks

    def __post_init__(self):
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform {self.platform!r}; known: {', '.join(PLATFORMS)}")
        if not self.mpi and not self.one_process_why:
            raise ValueError("a backend without MPI says why it runs as one process (one_process_why)")


@dataclass
class PlatformRecord:
    """A platform's subtree of the rank's record (``/ranks/<rank>/platform``). Its scalars
    are split by where they go: summary_attrs also to the run's ``/summary`` (and runs.csv),
    record_attrs (configuration texts, reports) to the record only."""

    summary_attrs: dict
    record_attrs: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)  # data sets and groups beside the attributes

    def tree(self) -> dict:
        return {"attrs": {**self.summary_attrs, **self.record_attrs}, **self.arrays}


class Backend(abc.ABC):
    """One run of PD14 on one simulator, driven phase by phase by the harness:
    import_simulator and setup (set-up), create, connect, [compile, load], simulate (the
    presimulation, then the simulation), then the collecting questions. Every method is
    called on every MPI rank."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, spec: dict, context: dict | None = None):
        self.spec = spec  # the run as a dict (spikescale.plan.Run.spec())
        self.context = context or {}  # the run's software and machine settings
        self.network = derived.network_of(spec)

    def capabilities_of_run(self) -> Capabilities:
        """The capabilities as this run has them: the class's, unless the backend learns
        otherwise while it sets up (brian2genn without a GPU runs on the CPU)."""
        return self.capabilities

    # --- set-up -----------------------------------------------------------------------
    @abc.abstractmethod
    def import_simulator(self) -> None:
        """Import the simulator (its start-up counts as set-up time)."""

    @abc.abstractmethod
    def setup(self) -> None:
        """Check the run's resources against the simulator and set its kernel up."""

    @abc.abstractmethod
    def versions(self) -> dict:
        """Software versions (and build facts) for the record's provenance."""

    # --- construction -----------------------------------------------------------------
    @abc.abstractmethod
    def create(self) -> None:
        """Neurons, devices and drive."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Synapses."""

    def compile(self) -> None:
        """Code generation and compilation, or mapping (capabilities.build_phases only)."""
        raise NotImplementedError(f"backend {self.name} has no compile phase (capabilities.build_phases is False)")

    def load(self) -> None:
        """The built program or platform takes the network (capabilities.build_phases only)."""
        raise NotImplementedError(f"backend {self.name} has no load phase (capabilities.build_phases is False)")

    # --- simulation ---------------------------------------------------------------------
    @abc.abstractmethod
    def simulate(self, t_ms: float, progress: Progress | None = None) -> None:
        """Simulate t_ms of model time (called for the presimulation, then the simulation)."""

    @abc.abstractmethod
    def kernel_timers(self) -> dict:
        """The simulator's own timers now (seconds; arrays allowed), names starting time_."""

    @abc.abstractmethod
    def spikes_in_last_simulate(self) -> int:
        """Spikes of this rank's neurons during the most recent simulate()."""

    # --- collection ---------------------------------------------------------------------
    @abc.abstractmethod
    def counts(self) -> dict:
        """n_neurons (network-wide), n_synapses_local, n_connections_local, n_virtual_processes."""

    @abc.abstractmethod
    def population_first_ids(self) -> list[int]:
        """The first sender id of each population, in P.POPULATIONS order."""

    @abc.abstractmethod
    def spikes(self) -> dict:
        """{population: (senders, times_ms)} recorded on this rank (record_spikes runs)."""

    def platform_record(self) -> PlatformRecord | None:
        """The platform's subtree of the rank's record (capabilities.platform_record only)."""
        return None

    def platform_energy(self) -> dict | None:
        """The platform's modelled energy as one energy meter ({"attrs": ...}); None when
        there is none for this run (capabilities.platform_energy only)."""
        return None

    @abc.abstractmethod
    def release(self) -> None:
        """Free the simulator's memory (after a failure, before the record is written)."""
