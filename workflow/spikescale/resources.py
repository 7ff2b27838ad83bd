"""What one run asks of the machine: cores, memory, walltime (Snakemake resources).

Memory is an estimate from the connection count, calibrated on this project's machines
(NEST 3.10, PD14 full scale: ~12 GB for 299 M connections; scale 0.1: ~0.5 GB), with
headroom. It is used to refuse runs that cannot fit before any job is submitted.
"""

from __future__ import annotations

import os
import shlex

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


def launch_command(run: dict, machine: dict) -> str:
    """Shell words that start the run's ranks (empty for a single rank). The rank layout
    is spelled out, so a launcher never falls back to one rank per core."""
    ranks = run["nodes"] * run["tasks_per_node"]
    if ranks == 1:
        return ""
    mpi = machine["mpi"]
    if mpi["launcher"] == "srun":
        return (f"srun --mpi={mpi.get('srun_mpi', 'pmix')} --nodes={run['nodes']} --ntasks={ranks} "
                f"--ntasks-per-node={run['tasks_per_node']} --cpus-per-task={run['threads_per_task']}")
    words = ["mpirun", "-n", str(ranks), "--map-by", f"ppr:{run['tasks_per_node']}:node", "--bind-to", "none"]
    if os.geteuid() == 0:
        words.append("--allow-run-as-root")  # CI and the test cluster run as root
    words += [shlex.quote(a) for a in mpi.get("mpirun_args", [])]
    return " ".join(words)


def slurm_resources(run: dict, machine: dict) -> dict:
    """Snakemake resources that the SLURM executor turns into the run's sbatch request."""
    slurm = machine.get("slurm", {})
    ranks = run["nodes"] * run["tasks_per_node"]
    res = {"nodes": run["nodes"], "cpus_per_task": run["threads_per_task"], "runtime": machine["walltime_max_min"]}
    extra = []
    if ranks > 1:
        # The executor runs a rule with an `mpi` resource in the batch step and lets it launch
        # its ranks; it takes the rank count from `tasks` and refuses `tasks_per_node` beside it.
        res.update(mpi=machine["mpi"]["launcher"], tasks=ranks)
        extra.append(f"--ntasks-per-node={run['tasks_per_node']}")
    if machine.get("exclusive", True):
        res["mem_mb"] = machine["memory_per_node_mb"]  # the node is the run's: all of its memory
    else:
        res["mem_mb"] = min(machine["memory_per_node_mb"], -(-estimated_memory_mb(run) // run["nodes"]))
    for key, resource in (("partition", "slurm_partition"), ("account", "slurm_account"), ("qos", "qos"),
                          ("constraint", "constraint")):
        if key in slurm:
            res[resource] = slurm[key]
    extra += (["--exclusive"] if machine.get("exclusive", True) else []) + list(slurm.get("extra_sbatch", []))
    if extra:
        res["slurm_extra"] = " ".join(extra)  # every option matched a strict pattern in the schema
    return res
