"""NEST 3.10 backend: PD14 through spikescale.models.pd14.nest_builder."""

from __future__ import annotations

import numpy as np

from spikescale.backends.base import Backend, Capabilities
from spikescale.models.pd14 import nest_builder
from spikescale.models.pd14 import params as P


class NestBackend(Backend):
    name = "nest"
    capabilities = Capabilities(platform="cpu", emulated=False, build_phases=False, mpi=True)

    def __init__(self, spec: dict, context: dict | None = None):
        super().__init__(spec, context)
        self.nest = None
        self.handles = None

    def import_simulator(self) -> None:
        import nest  # imported here so that its start-up counts as set-up time

        self.nest = nest

    def setup(self) -> None:
        nest = self.nest
        ranks = self.spec["nodes"] * self.spec["tasks_per_node"]
        if ranks > 1 and not nest.build_info.get("have_mpi", False):
            raise RuntimeError(
                f"run asks for {ranks} MPI ranks but this NEST ({nest.__file__}) was built without MPI: "
                "every rank would simulate the whole network. Use a NEST built with MPI (software config).")
        if nest.NumProcesses() != ranks:
            raise RuntimeError(f"run asks for {ranks} MPI rank(s) but NEST sees {nest.NumProcesses()}")
        nest_builder.setup_kernel(nest, dt_ms=self.spec["dt_ms"], threads_per_task=self.spec["threads_per_task"],
                                  seed=self.spec["seed"])
        vps = nest.total_num_virtual_procs
        if vps != self.spec["nodes"] * self.spec["tasks_per_node"] * self.spec["threads_per_task"]:
            raise RuntimeError(f"NEST has {vps} virtual processes, the run asked for "
                               f"{self.spec['nodes'] * self.spec['tasks_per_node'] * self.spec['threads_per_task']}")

    def release(self) -> None:
        """Drop the network and free its memory (after a failure, before writing the record)."""
        self.handles = None
        if self.nest is not None:
            self.nest.ResetKernel()

    def versions(self) -> dict:
        return {"nest-simulator": self.nest.__version__,
                "nest_have_mpi": bool(self.nest.build_info.get("have_mpi", False)),
                "nest_threads_model": str(self.nest.build_info.get("threads_model", "")),
                "nest_detailed_timers": self.detailed_timers()}

    # A kernel timer NEST only has when built with -Dwith-detailed-timers=ON (TIMER_DETAILED):
    # its stopwatches of StopwatchGranularity::Detailed (update, deliver, gather, collocate,
    # communicate, synchronization) are compiled out otherwise, and their time_* entries are
    # then missing from the kernel status, not zero. build_info has no flag for it (3.10).
    DETAILED_TIMER_PROBE = "time_update"

    def detailed_timers(self) -> bool:
        """Whether this NEST was built with detailed timers (the probe entry is there)."""
        return self.DETAILED_TIMER_PROBE in self.nest.GetKernelStatus()

    def create(self) -> None:
        self.handles = nest_builder.create(self.nest, self.network, record_spikes=self.spec["record_spikes"])

    def connect(self) -> None:
        nest_builder.connect(self.nest, self.network, self.handles)

    # Simulations at least this long run in about ten slices, each logged: progress for the
    # user, and a point where Python handles a pending SIGTERM (scancel, time limit) instead
    # of after the whole simulation. Prepare/Run/Cleanup is what Simulate does, so the
    # dynamics and NEST's timers (reset at Prepare) are those of one Simulate call.
    SLICED_FROM_MS = 2000.0
    MAX_SLICE_MS = 500.0

    def simulate(self, t_ms: float, progress=None) -> None:
        """Simulate t_ms. With `progress`, long simulations run in slices (Prepare, Run...,
        Cleanup; the same spikes as one Simulate, tested): each slice returns to Python,
        where progress is reported at every tenth and a SIGTERM can end the run with a
        record. A slice is at most MAX_SLICE_MS of model time, so that even a slow run
        answers a SIGTERM within SLURM's KillWait (30 s by default) before SIGKILL follows."""
        nest = self.nest
        if t_ms < self.SLICED_FROM_MS or progress is None:
            nest.Simulate(t_ms)
            return
        steps = int(round(t_ms / nest.resolution))
        slice_steps = max(1, min(steps // 10, int(round(self.MAX_SLICE_MS / nest.resolution))))
        done, reported_tenths = 0, 0
        nest.Prepare()
        try:
            while done < steps:
                n = min(slice_steps, steps - done)
                nest.Run(n * nest.resolution)
                done += n
                if done * 10 // steps > reported_tenths:
                    reported_tenths = done * 10 // steps
                    progress(done * nest.resolution, t_ms)
        finally:
            nest.Cleanup()

    def kernel_timers(self) -> dict:
        """Every NEST time_* kernel entry: wall-clock seconds, time_*_cpu the CPU seconds
        of the same stopwatch; arrays hold one value per thread of this rank (NEST's
        threaded stopwatches), scalars are the master thread's. Simulation timers are reset
        at Prepare(), i.e. at the start of each Simulate(); construction timers add up."""
        status = self.nest.GetKernelStatus()
        return {k: (np.asarray(v) if isinstance(v, (list, tuple)) else v) for k, v in status.items()
                if k.startswith("time_")}

    def spikes_in_last_simulate(self) -> int:
        """Spikes of neurons on this rank during the most recent Simulate() (NEST's
        local_spike_counter; counts without recording)."""
        return int(self.nest.GetKernelStatus("local_spike_counter"))

    def counts(self) -> dict:
        """n_neurons is network-wide; *_local counts are this rank's (summed over ranks)."""
        return {
            "n_neurons": int(sum(len(p) for p in self.handles.populations)),
            "n_synapses_local": nest_builder.recurrent_synapse_count(self.nest),
            "n_connections_local": int(self.nest.GetKernelStatus("num_connections")),
            "n_virtual_processes": int(self.nest.total_num_virtual_procs),
        }

    def population_first_ids(self) -> list[int]:
        return [int(p[0].global_id) for p in self.handles.populations]

    def spikes(self) -> dict:
        """{population: (senders, times_ms)} recorded on this rank (record_spikes only)."""
        return dict(zip(P.POPULATIONS, nest_builder.spikes_by_population(self.handles), strict=True))
