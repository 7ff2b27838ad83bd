"""Simulator backends behind one small interface the harness drives.

A backend builds PD14 from ``spikescale.models.pd14`` in phases (setup, create, connect), simulates,
and reports kernel timers, counts and spikes. The harness times and records; a backend
never does either.
"""

from __future__ import annotations

BACKENDS = ("nest", "brian2", "brian2genn", "spinnaker")
# backend -> (platform it runs on, whether that platform is emulated in software; None: it
# depends on the run, which records it as summary attribute `emulated`)
BACKEND_PLATFORMS = {"nest": ("cpu", False), "brian2": ("cpu", False), "brian2genn": ("gpu", False),
                     "spinnaker": ("spinnaker", None)}


def get_backend(name: str, run: dict, context: dict | None = None):
    if name == "nest":
        from spikescale.backends.nest import NestBackend

        return NestBackend(run)
    if name == "brian2":
        from spikescale.backends.brian2 import Brian2Backend

        return Brian2Backend(run)
    if name == "brian2genn":
        from spikescale.backends.brian2genn import Brian2GeNNBackend

        return Brian2GeNNBackend(run)
    if name == "spinnaker":
        from spikescale.backends.spinnaker import SpiNNakerBackend

        return SpiNNakerBackend(run, context)
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
