"""Run one run in phases and write its record: ``python -m spikescale.harness``.

Phases (spikescale.phases): setup, create, connect, [compile, load], presimulate, simulate,
collect; compile and load only for backends whose capabilities declare build phases
(spikescale.backends.base: code generation, or a platform's mapping). Each phase starts after
a barrier on all ranks and records its wall time and memory; the backend's kernel timers are
kept per phase (a simulator may reset them at each simulation: the presimulation's stay apart
from the simulation's). A run that raises (or gets SIGTERM between simulator calls) still writes
its record, with status "failed", the phase it died in and the error. The record is written
atomically, so a run killed with SIGKILL leaves no run file at all and is redone.

The harness drives a backend only through spikescale.backends.base.Backend and reads what it
can do from its Capabilities; it knows no backend by name.
"""

from __future__ import annotations

import time

_T_START = time.time()  # before the heavy imports: they belong to the run's wall time

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from spikescale.models.pd14 import params as P  # noqa: E402
from spikescale import comm as comm_mod  # noqa: E402
from spikescale import allocation, disturbance, memory, placement, provenance  # noqa: E402
from spikescale.energy import discover as energy_discover  # noqa: E402
from spikescale.energy.sampler import Sampler  # noqa: E402
from spikescale.energy.summary import energy_summary  # noqa: E402
from spikescale.backends import capabilities, get_backend  # noqa: E402
from spikescale.backends.base import Backend, Capabilities, PlatformRecord  # noqa: E402
from spikescale.phases import BY_NAME, CONSTRUCTION, PHASES, column  # noqa: E402
from spikescale.record import iso, write_record  # noqa: E402
from spikescale.schemas import complete  # noqa: E402


class Terminated(Exception):
    """Raised from the SIGTERM handler so that the run records how it ended."""


def _on_sigterm(signum, frame):
    # Under SLURM the signal comes more than once (slurmstepd, srun, the supervisor): the
    # first one ends the run, the others must not cut the writing of its record short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


_LOG_PREFIX = ""  # "[rank r] " in runs with several MPI ranks


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {_LOG_PREFIX}{msg}", flush=True)


class PhaseTimer:
    """Times the phases (spikescale.phases) on this rank; memory per phase in MB."""

    def __init__(self, comm):
        self.comm = comm
        self.done: dict[str, dict] = {}
        self.current: str | None = None
        self.peak_scope = "phase"
        self.sampler = None  # this node's energy sampler, on the node's first rank only
        self.watch = None  # this rank's disturbance.Watch: others' CPU time over create..simulate
        self.placement = None  # this rank's placement.Watch: its threads' CPUs over simulate

    def _helper_pids(self) -> set[int]:
        """Child processes that are spikescale's, not the simulator's: not counted."""
        pid = getattr(self.sampler, "pid", None)
        return {pid} if pid else set()

    @contextmanager
    def phase(self, name: str):
        if name not in BY_NAME:
            raise ValueError(f"no phase {name!r} in spikescale.phases")
        if self.comm is not None:
            self.comm.barrier()
        if self.sampler is not None:
            self.sampler.mark(name)  # after the barrier: every rank is at the boundary
        if self.watch is not None:
            self.watch.phase_started(name)
        if self.placement is not None:
            self.placement.phase_started(name)
        if not memory.reset_peak():
            self.peak_scope = "process"
        memory.reset_children_peak(self._helper_pids())
        self.current = name
        log(f"phase {name} started")
        t0 = time.perf_counter()
        yield
        wall_s = time.perf_counter() - t0
        if self.watch is not None:
            self.watch.phase_ended(name)
        if self.placement is not None:
            self.placement.phase_ended(name)
        children_mb = memory.children_peak_mb(self._helper_pids())
        # the rank's own peak plus its programs' (a backend's compiled program): what the node held
        self.done[name] = {"attrs": {"order": len(self.done), "wall_s": wall_s, "mem_rss_mb": memory.rss_mb(),
                                     "mem_peak_mb": memory.peak_mb() + children_mb,
                                     "mem_children_peak_mb": children_mb}}
        self.current = None
        log(f"phase {name} done: {wall_s:.3f} s, peak RSS {self.done[name]['attrs']['mem_peak_mb']:.0f} MB")

    def finish(self) -> None:
        """The end of the last phase, after a barrier (for the energy of that phase)."""
        if self.comm is not None:
            self.comm.barrier()
        if self.sampler is not None:
            self.sampler.mark("end")

    def wall(self, name: str) -> float | None:
        return self.done[name]["attrs"]["wall_s"] if name in self.done else None


def check_versions(expected: dict, found: dict) -> None:
    wrong = {k: (v, found.get(k, "not installed")) for k, v in expected.items() if str(found.get(k)) != str(v)}
    if wrong:
        detail = "; ".join(f"{k}: expected {v}, found {f}" for k, (v, f) in wrong.items())
        raise RuntimeError(f"software versions differ from the software config: {detail}")


def _timers_tree(timers: dict) -> dict:
    scalars = {k: v for k, v in timers.items() if np.ndim(v) == 0}
    tree = {"attrs": scalars}
    tree.update({k: np.asarray(v) for k, v in timers.items() if np.ndim(v) > 0})
    return tree


@dataclass(frozen=True)
class Ending:
    """How a run ended: "ok", or "failed" in a phase, with the error and its traceback."""

    status: str = "ok"
    error: str = ""
    error_type: str = ""
    failed_phase: str = ""  # "" when it failed outside every phase
    traceback: str = ""

    @classmethod
    def failure(cls, exc: BaseException, phase: str) -> Ending:
        error_type = type(exc).__name__
        return cls(status="failed", error=f"{error_type}: {exc}", error_type=error_type, failed_phase=phase,
                   traceback="".join(traceback.format_exception(exc)))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def execute(spec: dict, context: dict, out: str | Path, comm=None) -> dict:
    """Run one run and write its record to ``out`` (rank 0). Returns the record on rank 0,
    {} on other ranks. Never raises for errors of the run itself: they are recorded."""
    rank_run = RankRun(spec, context, comm)
    log(f"run {spec['run_id']}: backend {spec['backend']}, n_scaling {spec['n_scaling']}, "
        f"k_scaling {spec['k_scaling']}, {spec['nodes']} node(s) x {spec['tasks_per_node']} task(s) x "
        f"{spec['threads_per_task']} thread(s), seed {spec['seed']}")
    ending = Ending()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rank_run.run_phases()
    except BaseException as exc:  # noqa: BLE001 - every way a run can die is recorded
        if isinstance(exc, SystemExit):
            raise
        ending = rank_run.failed(exc)
    finally:
        if ending.ok:
            signal.signal(signal.SIGTERM, previous)
        rank_run.stop_meters()
    return rank_run.write(out, ending)


class RankRun:
    """One run as this rank does it: the phases in order, then its part of the record."""

    def __init__(self, spec: dict, context: dict, comm=None):
        self.spec, self.context = spec, context
        self.comm = comm  # None until set-up has MPI up
        self.timer = PhaseTimer(comm)  # without comm yet: the first barrier waits for MPI (see _set_up)
        # Where the rank runs, before the simulator is imported: with OMP_PROC_BIND set, the
        # OpenMP runtime binds the main thread to its first place when it is loaded, and the
        # mask after that is the thread's, not the rank's (seen: 1 CPU of 2 with 'close').
        self.at_start = allocation.rank_placement()
        self.timer.watch = disturbance.Watch(self.at_start["node"])  # load average: now
        # The machine's pinning before the simulator is imported: its OpenMP runtime reads
        # OMP_PROC_BIND and OMP_PLACES once, when it is loaded.
        placement.apply_pinning(context.get("machine", {}).get("pinning"))
        self.timer.placement = placement.Watch(self.at_start["node"])  # the rank's CPU set: now
        self.rank_tree: dict = {"attrs": {"rank": 0}}
        # Provenance first: a run that later exhausts its memory can still be described.
        self.versions = provenance.package_versions()
        self.host = {**provenance.collect_host(), **provenance.git_state()}
        self.allocation_tree: dict = {}
        self.backend: Backend | None = None
        self.energy: EnergyOnNode | None = None
        self.platform: PlatformRecord | None = None
        self.kernel_timers: dict = {}
        self.spikes_counted = 0

    def run_phases(self) -> None:
        self._set_up()
        with self.timer.phase("create"):
            self.backend.create()
        with self.timer.phase("connect"):
            self.backend.connect()
        if self.backend.capabilities_of_run().build_phases:
            # code generation and compilation (or mapping), then the program's (or the
            # platform's) start: loading its arrays, its initial state
            with self.timer.phase("compile"):
                self.backend.compile()
            with self.timer.phase("load"):
                self.backend.load()
        self._simulate()
        with self.timer.phase("collect"):
            self._collect()
        self.timer.finish()

    def _set_up(self) -> None:
        with self.timer.phase("setup"):
            self.backend = get_backend(self.spec["backend"], self.spec, self.context)
            comm_mod.require_mpi_support()  # before the simulator, which could exit without a record
            # The simulator first: one built with MPI initialises MPI when it is imported, and
            # mpi4py then joins that MPI (the order envs/build_nest_mpi.sh tests its build with).
            self.backend.import_simulator()
            self.comm = self.comm or comm_mod.world()
            self.timer.comm = self.comm
            self.rank_tree["attrs"]["rank"] = self.comm.rank
            set_log_rank(self.comm)
            self.allocation_tree = check_allocation(self.spec, self.context, self.comm, self.at_start)
            self.energy = EnergyOnNode(self.spec, self.context, self.comm, self.allocation_tree)
            self.timer.sampler = self.energy.sampler
            self.energy.measure_idle()
            self.backend.setup()
            self.versions.update(self.backend.versions())
            check_versions(self.context.get("software", {}).get("versions", {}), self.versions)

    def _simulate(self) -> None:
        """The presimulation (when asked for) and the simulation, each with the kernel
        timers at its end; the construction's timers before them."""
        self.kernel_timers = {"construction": self.backend.kernel_timers()}
        if self.spec["t_presim_ms"] > 0:
            with self.timer.phase("presimulate"):
                self.backend.simulate(self.spec["t_presim_ms"], progress=self._progress)
            self.kernel_timers["presimulate"] = self.backend.kernel_timers()
        with self.timer.phase("simulate"):
            self.backend.simulate(self.spec["t_sim_ms"], progress=self._progress)
        self.kernel_timers["simulate"] = self.backend.kernel_timers()
        self.spikes_counted = self.backend.spikes_in_last_simulate()

    def _progress(self, done_ms: float, total_ms: float) -> None:
        _progress(done_ms, total_ms)
        self.timer.placement.sample()  # mid-simulation: where the threads are now (simulate only)

    def _collect(self) -> None:
        self.rank_tree.update(collect_rank(self.spec, self.backend, self.kernel_timers, self.spikes_counted))
        if self.backend.capabilities_of_run().platform_record:
            self.platform = self.backend.platform_record()
            self.rank_tree["platform"] = self.platform.tree()

    def failed(self, exc: BaseException) -> Ending:
        """How the run ended; the simulator's memory freed for the writing of the record."""
        ending = Ending.failure(exc, self.timer.current or "")
        log(f"RUN FAILED in phase {ending.failed_phase or '(none)'}: {ending.error}")
        if self.backend is not None:
            # Free the simulator's memory first: after an out-of-memory error, HDF5 could
            # not even open the record file (seen: a segfault inside H5Fcreate).
            try:
                self.backend.release()
            except Exception as release_error:  # noqa: BLE001 - the original error matters more
                log(f"could not release the simulator's memory: {release_error}")
        return ending

    def stop_meters(self) -> None:
        """This node's energy meters, and the platform's own modelled one, into the rank's tree."""
        if self.energy is not None:
            self.rank_tree.update(self.energy.finish())
        try:
            add_platform_energy(self.rank_tree, self.backend)
        except Exception as model_error:  # noqa: BLE001 - the run's own record matters more
            log(f"could not model the platform's energy: {model_error}")

    def runs_on(self) -> Capabilities | None:
        """Where the run ran, as its backend says; None before the backend exists (the
        summary then says what the backend's class declares)."""
        return self.backend.capabilities_of_run() if self.backend is not None else None

    def write(self, out: str | Path, ending: Ending) -> dict:
        """Gather the ranks' trees and write the record on rank 0; a failed rank of several
        writes its own and ends the whole run."""
        self.rank_tree["phases"] = self.timer.done
        self.rank_tree["disturbance"] = self.timer.watch.tree()
        self.rank_tree["placement"] = self.timer.placement.tree()
        if self._node_leader():  # after the phases: hwloc's start measures nothing of the run
            self.rank_tree["node_provenance"] = provenance.node_provenance(self.timer.placement.cpus)
        comm = self.comm or comm_mod.SingleRank()  # failed before MPI was up: every rank speaks for itself
        if not ending.ok and comm.size > 1:
            # The other ranks may be waiting inside the simulator's own communication and would
            # never reach a gather: this rank writes what it knows, then ends the whole run.
            record = self._record([self.rank_tree], ending)
            record["attrs"]["error"] = f"rank {comm.rank} of {comm.size}: {ending.error}"
            write_record(out, record)
            log(f"record written by rank {comm.rank}: {out} (status failed); aborting the other ranks")
            comm.abort(1)
        gathered = comm.gather(self.rank_tree)
        if comm.rank != 0:
            return {}
        record = self._record(gathered, ending)
        write_record(out, record)
        log(f"record written: {out} (status {ending.status})")
        return record

    def _node_leader(self) -> bool:
        """The first rank on its node (every rank, before the ranks' nodes are known)."""
        nodes = [str(n) for n in self.allocation_tree.get("rank_node", [])]
        rank = self.rank_tree["attrs"]["rank"]
        return rank >= len(nodes) or nodes.index(nodes[rank]) == rank

    def _record(self, gathered: list[dict], ending: Ending) -> dict:
        return build_record(self.spec, self.context, gathered, ending=ending, host=self.host, versions=self.versions,
                            allocation_tree=self.allocation_tree, peak_scope=self.timer.peak_scope,
                            runs_on=self.runs_on(),
                            platform_summary=self.platform.summary_attrs if self.platform else None)


def _progress(done_ms: float, total_ms: float) -> None:
    log(f"  {done_ms:.0f} of {total_ms:.0f} ms model time ({100 * done_ms / total_ms:.0f} %)")


def set_log_rank(comm) -> None:
    global _LOG_PREFIX
    _LOG_PREFIX = f"[rank {comm.rank}] " if comm.size > 1 else ""


class EnergyOnNode:
    """The energy meters of this rank's node, read by the node's first rank only (one
    reader per node, not per rank); other ranks hold nothing. See spikescale/energy/."""

    def __init__(self, spec: dict, context: dict, comm, allocation_tree: dict):
        # the machine's energy section, its schema defaults filled in (spikescale.schemas)
        self.settings = complete("machine", context.get("machine", {}))["energy"]
        nodes = [str(n) for n in allocation_tree["rank_node"]]
        self.node = nodes[comm.rank]
        self.leader = nodes.index(self.node) == comm.rank
        self.sampler, self.unavailable = None, []
        if not self.leader:
            return
        busy_cores = spec["tasks_per_node"] * spec["threads_per_task"]
        meters, self.unavailable = energy_discover.discover(self.settings, busy_cores)
        if meters:
            recipe = {"energy": self.settings, "busy_cores": busy_cores}
            self.sampler = Sampler(meters, 1.0 / self.settings["sampling_hz"], recipe).start()
        for item in self.unavailable:
            log(f"energy: {item.source} unavailable: {item.reason}")
        if meters:
            log("energy: " + ", ".join(f"{m.source} {m.scope} ({m.kind})" for m in meters))

    def measure_idle(self) -> None:
        """Idle power before the network exists: every rank sleeps (no rank spins in a
        barrier meanwhile); the node's meters count."""
        idle_s = float(self.settings["idle_measurement_s"])
        if idle_s <= 0:
            return
        if self.sampler is not None:
            self.sampler.mark("idle")
        log(f"energy: measuring idle power for {idle_s:g} s")
        time.sleep(idle_s)

    def finish(self) -> dict:
        """This node's energy subtree for the rank's record (empty on other ranks)."""
        if not self.leader:
            return {}
        tree = {"attrs": {"node": self.node,
                          "unavailable": json.dumps([[u.source, u.reason] for u in self.unavailable])}}
        if self.sampler is not None:
            self.sampler.stop()
            tree["meters"] = self.sampler.tree()
        return {"energy": tree}


def check_allocation(spec: dict, context: dict, comm, at_start: dict | None = None) -> dict:
    """Compare the resources the run got with its request; raise when they differ (at_start:
    this rank's allocation.rank_placement() from before the simulator was imported)."""
    placements = comm.allgather(at_start or allocation.rank_placement())
    # Rank 0 asks slurmctld; every rank uses its answer (one query per run, not per rank).
    slurm = comm.allgather(allocation.slurm_allocation(ask_slurmctld=comm.rank == 0))[0]
    allow_over = bool(context.get("machine", {}).get("allow_oversubscription", False))
    gpus_asked = allocation.gpus_per_node_asked(context.get("software"), context.get("machine", {}))
    wrong = allocation.problems(spec, comm.size, placements, slurm, allow_over, gpus_asked)
    tree = {"attrs": {"requested_nodes": spec["nodes"], "requested_tasks_per_node": spec["tasks_per_node"],
                      "requested_threads_per_task": spec["threads_per_task"], "requested_gpus_per_node": gpus_asked,
                      "mpi_world_size": comm.size, "nodes_used": sorted({p["node"] for p in placements}),
                      "gpus_per_node": allocation.gpus_per_node(placements),
                      **{f"slurm_{k}": v for k, v in slurm.items()}},
            "rank_node": np.array([p["node"] for p in placements], dtype=str),
            "rank_cpus_usable": np.array([p["cpus_usable"] for p in placements], dtype=np.int64),
            "rank_gpus_visible": np.array([p["gpus_visible"] for p in placements], dtype=np.int64),
            "rank_gpus_source": np.array([p["gpus_source"] for p in placements], dtype=str)}
    if wrong:
        raise RuntimeError("the run did not get the resources it asked for: " + "; ".join(wrong))
    return tree


def add_platform_energy(rank_tree: dict, backend: Backend | None) -> None:
    """A platform's own modelled energy (an emulated board) as one more meter of the rank's
    energy tree; it counts for the run instead of the host's meters, which measured the
    emulator (spikescale/energy/summary.py)."""
    if backend is None or not backend.capabilities_of_run().platform_energy:
        return
    meter = backend.platform_energy()
    if meter is None:
        return
    energy = rank_tree.setdefault("energy", {"attrs": {"node": "", "unavailable": "[]"}})
    energy.setdefault("meters", {})[f"{meter['attrs']['source']}-{meter['attrs']['scope']}"] = meter


def collect_rank(spec: dict, backend: Backend, timers: dict, spikes_counted: int) -> dict:
    """This rank's kernel timers, counts and (validation runs) spikes."""
    tree: dict = {"kernel_timers": {name: _timers_tree(t) for name, t in timers.items()}}
    counts = backend.counts()
    counts["n_spikes_sim_counter"] = spikes_counted
    if spec["record_spikes"]:
        spikes = backend.spikes()
        t0 = spec["t_presim_ms"]
        per_pop = np.array([int(np.count_nonzero(times > t0)) for _, times in spikes.values()])
        tree["spikes"] = {pop: {"senders": s, "times_ms": t} for pop, (s, t) in spikes.items()}
        tree["population_first_ids"] = np.asarray(backend.population_first_ids(), dtype=np.int64)
        tree["spikes_sim_by_population"] = per_pop
        counts["n_spikes"] = int(per_pop.sum())
        counts["synaptic_events"] = float(np.dot(per_pop, backend.network.out_degree))
        counts["synaptic_events_method"] = "spikes per population x mean out-degree of that population"
    else:
        counts["n_spikes"] = spikes_counted
        counts["synaptic_events"] = float(spikes_counted * backend.network.n_synapses / backend.network.n_neurons)
        counts["synaptic_events_method"] = "spikes (kernel counter) x mean out-degree of the network"
    tree["counts"] = {"attrs": counts}
    return tree


def build_record(spec: dict, context: dict, gathered: list[dict], *, ending: Ending, host: dict, versions: dict,
                 allocation_tree: dict, peak_scope: str, runs_on: Capabilities | None = None,
                 platform_summary: dict | None = None) -> dict:
    """The run's record from the ranks' trees (runs_on: where it ran, None: as its backend
    declares; platform_summary: the platform's figures for the summary)."""
    t_end = time.time()
    summary = summarize(spec, gathered, peak_scope, spec["t_sim_ms"] / 1000.0, runs_on=runs_on,
                        platform_summary=platform_summary)
    summary["t_total_s"] = t_end - _T_START
    threshold = complete("machine", context.get("machine", {}))["disturbance"]["max_other_cpu_share"]
    summary.update(disturbance.run_summary(gathered, threshold))
    machine = context.get("machine", {})
    shares = placement.verdict(gathered, spec["tasks_per_node"] * spec["threads_per_task"],
                               bool(machine.get("allow_oversubscription", False)))
    share_reason = shares.pop("threads_share_cores_reason")
    summary.update(shares, pinning=placement.pinning_text(machine.get("pinning")))
    nodes = {}
    for tree in gathered:  # topology and CPU settings once per node, under provenance
        if "node_provenance" in tree:
            node_tree = tree.pop("node_provenance")
            nodes.setdefault(node_tree["attrs"]["host"], node_tree)
    record = {
        "attrs": {"run_id": spec["run_id"], "campaign": spec["campaign"], "status": ending.status,
                  "error": ending.error, "error_type": ending.error_type, "failed_phase": ending.failed_phase,
                  "started_at": iso(_T_START), "finished_at": iso(t_end)},
        "spec": {"attrs": spec},
        "summary": {"attrs": summary},
        "provenance": {
            "attrs": {**host, "config_sha256": provenance.config_sha256({"spec": spec, **context}),
                      "argv": " ".join(sys.argv)},
            "packages": {"attrs": versions},
            "slurm": {"attrs": provenance.slurm_variables()},
            "context": json.dumps(context, sort_keys=True),
            "nodes": nodes,
            "process": provenance.process_provenance(),
            "placement": {"attrs": {"threads_share_cores_reason": share_reason, "busy_share": placement.BUSY_SHARE,
                                    "pinning": placement.pinning_text(machine.get("pinning")),
                                    **placement.pinning_environment(machine.get("pinning"))}},
        },
        "ranks": {str(tree["attrs"]["rank"]): tree for tree in gathered},
    }
    if allocation_tree:
        record["allocation"] = allocation_tree
    if ending.traceback:
        record["traceback"] = ending.traceback
    return record


def _rank_stats(out: dict, name: str, values: list[float]) -> None:
    """min, mean and max over ranks: beNNch kept only the mean, which hides imbalance."""
    out[f"{name}_rank_min"] = min(values)
    out[f"{name}_rank_mean"] = sum(values) / len(values)
    out[f"{name}_rank_max"] = max(values)


def _declared(backend: str) -> Capabilities | None:
    try:
        return capabilities(backend)
    except ValueError:  # an unknown backend: its run failed in set-up
        return None


def summarize(spec: dict, ranks: list[dict], peak_scope: str, t_model_s: float, *,
              runs_on: Capabilities | None = None, platform_summary: dict | None = None) -> dict:
    """Run-level figures: phase times are the maximum over ranks (the run is as slow as
    its slowest rank), counts are sums over ranks, memory the maximum; min, mean and max
    over ranks are kept beside them. Where the run ran (platform, emulated) comes from
    runs_on, or as the spec's backend declares; the platform's own figures are copied."""
    out: dict = {"n_ranks": len(ranks)}
    for phase in PHASES:
        values = [r["phases"][phase.name]["attrs"]["wall_s"] for r in ranks if phase.name in r.get("phases", {})]
        out[phase.column] = max(values) if values and len(values) == len(ranks) else None
        if out[phase.column] is not None:
            _rank_stats(out, phase.column, values)
    construction = [out[column(name)] for name in CONSTRUCTION]
    if None not in construction:
        out["t_construct_s"] = sum(construction)
    t_sim = column("simulate")
    out["rtf"] = out[t_sim] / t_model_s if out[t_sim] is not None else None
    if out[t_sim] is not None and out[f"{t_sim}_rank_mean"] > 0:
        out["imbalance_sim"] = out[t_sim] / out[f"{t_sim}_rank_mean"]  # max over mean, 1 = balanced
    peaks = [max(p["attrs"]["mem_peak_mb"] for p in r["phases"].values()) for r in ranks if r.get("phases")]
    out["mem_peak_mb_max"] = max(peaks) if peaks else None
    if peaks:
        _rank_stats(out, "mem_peak_mb", peaks)
    out["mem_peak_scope"] = peak_scope
    counts = [r["counts"]["attrs"] for r in ranks if "counts" in r]
    if counts and len(counts) == len(ranks):
        for key in ("n_spikes", "synaptic_events"):
            out[key] = sum(c[key] for c in counts)
        _rank_stats(out, "n_spikes", [c["n_spikes"] for c in counts])
        out["n_neurons"] = counts[0]["n_neurons"]  # network-wide on every rank
        out["n_synapses"] = sum(c["n_synapses_local"] for c in counts)
        out["synaptic_events_method"] = counts[0]["synaptic_events_method"]
        out["rate_mean_hz"] = out["n_spikes"] / out["n_neurons"] / t_model_s if out["n_neurons"] else None
    out["n_populations"] = len(P.POPULATIONS)
    runs_on = runs_on or _declared(spec["backend"])
    out["platform"] = runs_on.platform if runs_on else ""
    out["emulated"] = runs_on.emulated if runs_on else False
    out.update(platform_summary or {})
    out.update(energy_summary(ranks, out.get("synaptic_events")))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="run spec as JSON (spikescale.plan.Run)")
    parser.add_argument("--context", default="{}", help="software and machine settings of the run, JSON")
    parser.add_argument("--out", required=True, help="run file to write (HDF5)")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    context = json.loads(args.context)
    record = execute(spec, context, args.out)
    # A run ended by SIGTERM has written its record, and says so as a shell would (128 +
    # the signal): the supervisor then sets the attempt aside and the run is done again.
    if record and record.get("attrs", {}).get("error_type") == "Terminated":
        return 128 + signal.SIGTERM
    # A failed run has still produced its record: that is the job's output. Its status
    # lives in the record and in runs.csv; see docs/running.md for re-running failures.
    return 0


if __name__ == "__main__":
    sys.exit(main())
