"""What a run will need before it is submitted: peak memory per node and walltime.

Both come from the model's size (connections, neurons and expected synaptic events, from
spikescale.models.pd14.derived) and the run's shape, with constants calibrated on this
project's reference machine (2 cores, 24 GiB): memory by tests/benchmarks/memory_calibration.py
(PD14 at scales 0.05, 0.1 and 0.2, the whole process tree sampled) and by the full-scale
benchmark (tests/benchmarks/full_scale.py); times by the idle-machine benchmarks named in each
basis text. The configuration check (spikescale.config.shape_problems) refuses, before any
job starts, a machine whose nodes cannot hold a run or whose time limit cannot, naming the
figures.

Memory uses the configuration advisor's memory model (spikescale.perf_model). A backend
whose memory or time is not known here gets no figure and a reason, and is never
refused on a guess: a SpiNNaker board (its memory is the board's), GeNN and brian2genn on a
GPU (device memory is not the host's; no GPU was measured at these sizes).

The time estimate is for cores like this machine's (an Intel Xeon, 2 cores shared in a
container); on a cluster's cores it is an upper estimate rather than a prediction. The
configuration advisor is where fitted predictions, checked against runs held back, belong.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikescale.models.pd14 import derived
from spikescale.perf_model import (ESTIMATE_MEMORY, MEMORY_TERMS, evaluate, expected_events_per_model_s,
                                   planned_configuration)


@dataclass(frozen=True)
class TimeModel:
    """Core-seconds of each phase of one run, split into parts that divide over the cores
    the run uses (all of its threads and ranks, or one where the backend is serial)."""

    fixed_s: float  # start-up, code generation and compilation: not divided
    construct_core_s_per_connection: float
    sim_core_s_per_event: float  # per recurrent synaptic event (derived rates x out-degree)
    sim_core_s_per_neuron_step: dict  # per neuron and time step, by drive ("poisson", "dc")
    parallel: bool  # False: the backend uses one core whatever the shape
    basis: str


# Peak memory per rank uses the advisor's memory model (spikescale.perf_model.MEMORY_TERMS: a
# base, shares per neuron and per synapse the rank holds, buffers per extra rank and per
# extra thread) with the constants of perf_model.ESTIMATE_MEMORY, which say how they were found.
MEMORY_MODELS = ESTIMATE_MEMORY

MEMORY_UNKNOWN = {
    "brian2genn": "brian2genn's memory was not calibrated (it picks a GPU or the CPU at run time; on a GPU the "
                  "synapses are in device memory)",
}

TIME_MODELS: dict[str, TimeModel] = {
    # NEST 3.10 at full scale, DC drive, 4 threads on the 2 cores (tests/benchmarks/full_scale.py,
    # idle machine): construction 110.6 s (221 core-s for 298.9 M connections), RTF 80.4 (161
    # core-s per model second for 9.7e8 synaptic events); at scale 0.1 with Poisson drive and one
    # thread (an idle campaign, compare_versions): RTF 7.06, which after the events leaves 7e-8
    # core-s per neuron and step for the Poisson input (one poisson_generator event per neuron
    # and step through the connection infrastructure).
    "nest": TimeModel(5.0, 7.4e-7, 1.62e-7, {"poisson": 7.1e-8, "dc": 5.0e-9}, True,
                      "NEST at full scale (DC, tests/benchmarks/full_scale.py) and scale 0.1 (Poisson), "
                      "idle machine, this machine's cores"),
    # Brian2 2.9, one thread, scale 0.1 Poisson: construction 0.7 s, compile ~10-45 s, RTF 1.5.
    # Its cost per event is taken as NEST's (not measured apart).
    "brian2": TimeModel(45.0, 3.0e-7, 1.62e-7, {"poisson": 1.0e-8, "dc": 1.0e-8}, True,
                        "Brian2 at scale 0.1 (Poisson, idle machine); per-event cost taken as NEST's"),
    # PyGeNN 5.4, CPU backend (one thread), scale 0.1 Poisson: RTF 1.71 (double precision).
    "genn": TimeModel(30.0, 3.0e-7, 1.62e-7, {"poisson": 1.2e-8, "dc": 1.2e-8}, False,
                      "PyGeNN CPU at scale 0.1 (docs/genn.md); per-event cost taken as NEST's; one thread"),
    # The SpiNNaker emulator: RTF 2.64 at scale 0.1 on one core (docs/spinnaker.md); its
    # mapping (sPyNNaker's synaptic matrices) is most of its construction.
    "spinnaker": TimeModel(60.0, 1.0e-6, 1.62e-7, {"poisson": 1.5e-8, "dc": 1.5e-8}, False,
                           "the SpiNNaker emulator at scale 0.1 (docs/spinnaker.md); per-event cost taken as "
                           "NEST's; one core"),
}

TIME_UNKNOWN = {
    "brian2genn": "brian2genn's time was not calibrated beyond scale 0.1 (compilation alone ~70-110 s)",
}


@dataclass(frozen=True)
class RunEstimate:
    backend: str
    mem_mb_per_node: float | None  # None: not known (mem_basis says why)
    mem_basis: str
    walltime_s: float | None  # None: not known (time_basis says why)
    time_basis: str


def on_gpu(backend: str, software: dict | None, machine: dict | None = None) -> bool:
    """PyGeNN on CUDA, or on 'auto' where the machine declares GPUs (where auto picks CUDA).
    brian2genn picks its device at run time and has no model either way."""
    chosen = ((software or {}).get("pygenn") or {}).get("backend", "auto")
    has_gpus = bool((machine or {}).get("gpus_per_node"))
    return backend == "genn" and (chosen == "cuda" or (chosen == "auto" and has_gpus))


def _model_of(run: dict, software: dict | None, machine: dict | None, models: dict, unknown: dict,
              what: str, on_gpu_reason: str):
    """The backend's model among ``models``, or None and why there is none (a run that names
    no backend is NEST's, as in spikescale.resources' callers)."""
    backend = run.get("backend", "nest")
    if on_gpu(backend, software, machine):
        return None, f"{backend} on a GPU: {on_gpu_reason}"
    model = models.get(backend)
    if model is None:
        return None, unknown.get(backend, f"no {what} model for backend {backend!r}")
    return model, ""


def memory_per_node_mb(run: dict, software: dict | None = None, machine: dict | None = None,
                       ) -> tuple[float | None, str]:
    """Peak memory of the run's busiest node (MB) and how it was found. ``run``: a spec (or
    the few keys network_of, the backend and the shape need)."""
    model, why_not = _model_of(run, software, machine, MEMORY_MODELS, MEMORY_UNKNOWN, "memory",
                               "device memory, not estimated")
    if model is None:
        return None, why_not
    config = planned_configuration(run.get("backend", "nest"), run["n_scaling"], run["k_scaling"], run["drive"],
                                   run.get("dt_ms", 0.1), run["nodes"], run["tasks_per_node"],
                                   run.get("threads_per_task", 1), run.get("thalamic_input", False))
    per_rank = evaluate(MEMORY_TERMS, model["constants"], config)
    terms = ", ".join(f"{name} {value:.4g}" for name, value in model["constants"].items())
    return run["tasks_per_node"] * per_rank, (
        f"{run['tasks_per_node']} rank(s) x {per_rank:,.0f} MB for {config.n_synapses / config.ranks:,.0f} synapses "
        f"and {config.n_neurons / config.ranks:,.0f} neurons per rank ({int(config.n_synapses):,} synapses on "
        f"{config.ranks} rank(s)); the advisor's memory model ({terms}): {model['basis']}")


def walltime_s(run: dict, machine: dict, software: dict | None = None) -> tuple[float | None, str]:
    """Wall time of the whole run (start-up, construction, presimulation, simulation) on the
    machine's cores, and how it was found."""
    model, why_not = _model_of(run, software, machine, TIME_MODELS, TIME_UNKNOWN, "time",
                               "not estimated (no GPU measured at these sizes)")
    if model is None:
        return None, why_not
    net = derived.network_of(run)
    cores = 1
    if model.parallel:
        cores = run["nodes"] * min(run["tasks_per_node"] * run["threads_per_task"], int(machine["cores_per_node"]))
    t_model_s = (run["t_presim_ms"] + run["t_sim_ms"]) / 1000.0
    steps = net.n_neurons * t_model_s * 1000.0 / run["dt_ms"]
    core_s = (net.connections_total() * model.construct_core_s_per_connection
              + expected_events_per_model_s(net) * t_model_s * model.sim_core_s_per_event
              + steps * model.sim_core_s_per_neuron_step[run["drive"]])
    # the machine file may say its cores are faster (or slower) than the calibration's
    speed = float(machine.get("core_speed_relative", 1.0))
    total = model.fixed_s + core_s / cores / speed
    faster = f" at {speed:g} x this machine's core speed (core_speed_relative)" if speed != 1.0 else ""
    return total, (f"{model.fixed_s:.0f} s fixed + {core_s:,.0f} core-s over {cores} core(s){faster} "
                   f"({t_model_s:g} s of model time); {model.basis}")


def estimate_run(run: dict, machine: dict, software: dict | None = None) -> RunEstimate:
    mem, mem_basis = memory_per_node_mb(run, software, machine)
    wall, time_basis = walltime_s(run, machine, software)
    return RunEstimate(run.get("backend", "nest"), mem, mem_basis, wall, time_basis)
