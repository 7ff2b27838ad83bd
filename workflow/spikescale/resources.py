"""What one run asks of the machine: cores, memory, walltime (Snakemake resources).

Memory comes from spikescale.estimate, the per-backend model that also refuses runs that
cannot fit before any job is submitted.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from spikescale import estimate

# What Snakemake reserves for a run whose backend has no memory model (a GPU run, brian2genn):
# it only spaces local jobs; nothing is refused on it.
UNKNOWN_MEMORY_MB = 2000


def estimated_memory_mb(run: dict) -> int:
    """The whole run's memory (all of its nodes), MB."""
    per_node, _ = estimate.memory_per_node_mb(run)
    return int(UNKNOWN_MEMORY_MB if per_node is None else per_node) * run["nodes"]


def cores_requested(run: dict, machine: dict) -> int:
    """Cores Snakemake reserves for the run on one node. With an exclusive machine the run
    takes the whole node, so no two runs share cores and timings stay honest."""
    if machine.get("exclusive", True):
        return int(machine["cores_per_node"])
    return int(run["tasks_per_node"] * run["threads_per_task"])


SLURM_STEP_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm_step.sh"


def launch_command(run: dict, machine: dict) -> str:
    """Shell words that start the run's ranks. The rank layout is spelled out, so a launcher
    never falls back to one rank per core.

    Without SLURM a single rank needs no launcher. In a SLURM job every run, one rank or
    many, is its own job step (workflow/scripts/slurm_step.sh explains why): then SLURM
    binds and accounts it like any step, and an MPI-built NEST gets its PMIx server from
    srun even for one rank (Open MPI's singleton start fails inside a job step).
    """
    ranks = run["nodes"] * run["tasks_per_node"]
    on_slurm = machine.get("executor") == "slurm"
    if ranks == 1 and not on_slurm:
        return ""
    mpi = machine.get("mpi", {})
    pinning = machine.get("pinning", {})  # the machine file's binding (placement.py records it)
    if mpi.get("launcher") == "mpirun" and ranks > 1:
        words = ["mpirun", "-n", str(ranks), "--map-by", f"ppr:{run['tasks_per_node']}:node",
                 "--bind-to", pinning.get("mpirun_bind_to", "none")]
        if os.geteuid() == 0:
            words.append("--allow-run-as-root")  # CI and the test cluster run as root
        words += [shlex.quote(a) for a in mpi.get("mpirun_args", [])]
    else:
        # A machine without an `mpi` entry leaves the MPI plugin to the site's MpiDefault.
        mpi_type = mpi.get("srun_mpi", "pmix") if mpi else None
        words = ["srun", "--overlap", "--kill-on-bad-exit=1", *([f"--mpi={mpi_type}"] if mpi_type else []),
                 f"--nodes={run['nodes']}", f"--ntasks={ranks}", f"--ntasks-per-node={run['tasks_per_node']}",
                 f"--cpus-per-task={run['threads_per_task']}"]
        if "srun_cpu_bind" in pinning:
            words.append(f"--cpu-bind={safe_word(pinning['srun_cpu_bind'], 'pinning.srun_cpu_bind')}")
    if on_slurm:
        words.insert(0, shlex.quote(str(SLURM_STEP_SCRIPT)))
    return " ".join(words)


# What a value on a job's command line may contain: the schemas allow no more than this, and
# slurm_resources checks again, so a value that reaches sbatch by any other path cannot
# carry shell syntax either.
SAFE_WORD = re.compile(r"^[A-Za-z0-9_.,:/@+%=-]{1,200}$")


def safe_word(value, what: str) -> str:
    text = str(value)
    if not SAFE_WORD.match(text):
        raise ValueError(f"{what} = {text!r} may only contain letters, digits and _ . , : / @ + % = - "
                         "(it goes onto an sbatch command line)")
    return text


def slurm_resources(run: dict, machine: dict, gpus_per_node: int = 0) -> dict:
    """Snakemake resources that the SLURM executor turns into the run's sbatch request;
    ``gpus_per_node`` (allocation.gpus_per_node_asked: the machine's, for a GPU run) GPUs on
    each of the run's nodes."""
    slurm = machine.get("slurm", {})
    ranks = run["nodes"] * run["tasks_per_node"]
    res = {"nodes": run["nodes"], "cpus_per_task": run["threads_per_task"], "runtime": machine["walltime_max_min"]}
    # No `mpi` resource, although runs may have many ranks: with one, the executor's job
    # step ignores the array task id and every task of an array runs the FIRST job (plugin
    # 2.8, jobstep 0.6.1). The run starts its own ranks anyway (launch_command).
    res["tasks"] = ranks
    extra = [f"--ntasks-per-node={run['tasks_per_node']}"]
    if machine.get("exclusive", True):
        res["mem_mb"] = machine["memory_per_node_mb"]  # the node is the run's: all of its memory
    else:
        res["mem_mb"] = min(machine["memory_per_node_mb"], -(-estimated_memory_mb(run) // run["nodes"]))
    if gpus_per_node:
        # `gres` (--gres=gpu:N) is per node, as the machine file counts them; the plugin's `gpu`
        # resource would be --gpus=N, a count for the whole job that SLURM may spread unevenly
        # over several nodes. Never through slurm_extra: the plugin reads `gres` to know a GPU job.
        gpu_type = machine.get("gpu_type")
        res["gres"] = (f"gpu:{safe_word(gpu_type, 'gpu_type')}:{int(gpus_per_node)}" if gpu_type
                       else f"gpu:{int(gpus_per_node)}")
        # For a GPU job the plugin (2.8) drops --ntasks and sends --ntasks-per-gpu=<tasks>, which
        # sbatch refuses beside --ntasks-per-node ("mutually exclusive", seen on the test
        # cluster); tasks_per_gpu 0 keeps it out, and the ranks stay --nodes x --ntasks-per-node.
        res["tasks_per_gpu"] = 0
    for key, resource in (("partition", "slurm_partition"), ("account", "slurm_account"), ("qos", "qos"),
                          ("constraint", "constraint")):
        if key in slurm:
            res[resource] = safe_word(slurm[key], f"slurm.{key}")
    extra += (["--exclusive"] if machine.get("exclusive", True) else []) + list(slurm.get("extra_sbatch", []))
    if extra:
        # every option matched a strict pattern in the schema; checked and quoted again here
        res["slurm_extra"] = " ".join(shlex.quote(safe_word(e, "slurm.extra_sbatch")) for e in extra)
    return res
