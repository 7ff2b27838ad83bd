"""Simulator backends behind one interface the harness drives (spikescale.backends.base).

A backend builds PD14 from ``spikescale.models.pd14`` in phases (setup, create, connect), simulates,
and reports kernel timers, counts and spikes. The harness times and records; a backend
never does either. What each backend can do and what it runs on is declared on its class
(``Capabilities``).
"""

from __future__ import annotations

import importlib

from spikescale.backends.base import Backend, Capabilities

# backend name -> "module:class". Imported on demand: each backend's simulator lives in its
# own environment, and the modules themselves import no simulator, so any environment can
# read every backend's capabilities.
REGISTRY = {
    "nest": "spikescale.backends.nest:NestBackend",
    "brian2": "spikescale.backends.brian2:Brian2Backend",
    "brian2genn": "spikescale.backends.brian2genn:Brian2GeNNBackend",
    "genn": "spikescale.backends.genn:GeNNBackend",
    "spinnaker": "spikescale.backends.spinnaker:SpiNNakerBackend",
}
BACKEND_NAMES = tuple(REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The class registered for a backend name."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def capabilities(name: str) -> Capabilities:
    """What a backend declares it can do and runs on (before any run refines it)."""
    return backend_class(name).capabilities


def get_backend(name: str, spec: dict, context: dict | None = None) -> Backend:
    """The backend object for one run."""
    return backend_class(name)(spec, context)
