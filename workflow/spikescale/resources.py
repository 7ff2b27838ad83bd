"""What one run asks of the machine: cores, memory, walltime (Snakemake resources).

Memory is an estimate from the connection count, calibrated on this project's machines
(NEST 3.10, PD14 full scale: ~12 GB for 299 M connections; scale 0.1: ~0.5 GB), with
headroom. It is used to refuse runs that cannot fit before any job is submitted.
"""

from __future__ import annotations

from models.pd14 import derived

BYTES_PER_CONNECTION = 45  # NEST static_synapse plus connection infrastructure, with headroom
MB_PER_RANK = 600  # interpreter, NEST kernel, buffers


def estimated_memory_mb(run: dict) -> int:
    net = derived.derive(run["n_scaling"], run["k_scaling"], run["drive"], run["thalamic_input"])
    ranks = run["nodes"] * run["tasks_per_node"]
    return int(MB_PER_RANK * ranks + net.connections_total() * BYTES_PER_CONNECTION / 1e6)


def cores_requested(run: dict, machine: dict) -> int:
    """Cores Snakemake reserves for the run on one node. With an exclusive machine the run
    takes the whole node, so no two runs share cores and timings stay honest."""
    if machine.get("exclusive", True):
        return int(machine["cores_per_node"])
    return int(run["tasks_per_node"] * run["threads_per_task"])
