"""The phases of a run: one vocabulary for the harness, the record, runs.csv, the energy
summary, the figures and the beNNch export.

A phase's name is what the record calls it (``/ranks/<rank>/phases/<name>``) and what the
code says; its column is runs.csv's wall-time column for it (units in the name, seconds).
Two columns abbreviate (``t_presim_s``, ``t_sim_s``): they were published that way, as
beNNch's figures and the community's papers say "presim" and "sim", and runs.csv keeps its
column names stable. Nothing else may spell a phase another way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    column: str  # runs.csv: wall time of the phase, maximum over ranks
    label: str  # figure legends
    meaning: str
    backends: str = "all"  # which backends have it: "all", or names separated by ", "


PHASES = (
    Phase("setup", "t_setup_s", "set-up", "simulator import, MPI, allocation check, energy meters, kernel settings"),
    Phase("create", "t_create_s", "create", "neurons, devices and drive created"),
    Phase("connect", "t_connect_s", "connect", "synapses drawn and created"),
    Phase("compile", "t_compile_s", "compile (Brian2, GeNN) / map (SpiNNaker)",
          "code generation and compilation (Brian2, brian2genn, GeNN's model.build()); sPyNNaker's mapping and "
          "data generation (SpiNNaker)", backends="brian2, brian2genn, genn, spinnaker"),
    Phase("load", "t_load_s", "load (Brian2 program, emulator)",
          "the generated program starts and loads its arrays (Brian2, brian2genn; GeNN's model.load(): "
          "allocation and initialisation); the emulator is set up (emulated SpiNNaker)",
          backends="brian2, brian2genn, genn, spinnaker"),
    Phase("presimulate", "t_presim_s", "presimulate", "simulation of t_presim_ms, discarded (start-up transient)"),
    Phase("simulate", "t_sim_s", "simulate", "simulation of t_sim_ms: the measured state propagation"),
    Phase("collect", "t_collect_s", "collect", "counts, kernel timers and spikes gathered for the record"),
)
BY_NAME = {phase.name: phase for phase in PHASES}
NAMES = tuple(phase.name for phase in PHASES)
COLUMNS = tuple(phase.column for phase in PHASES)
# Network construction, as beNNch and the PD14 papers count it.
CONSTRUCTION = ("create", "connect")
# The phases drawn as stacked bars in the scaling figures (set-up and collect are the
# harness's own work, not the simulator's, and are reported apart).
STACKED = ("create", "connect", "compile", "load", "presimulate", "simulate")
# Phases only code-generating or mapping backends have (spikescale.backends: Capabilities).
BUILD_PHASES = ("compile", "load")


def column(name: str) -> str:
    """runs.csv's wall-time column of a phase."""
    return BY_NAME[name].column
