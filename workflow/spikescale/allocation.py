"""Did the run get what it asked for? Checked at the start of every run.

A run asks for nodes x tasks per node (MPI ranks) x threads per task. What it got is read
from MPI (world size), from SLURM's variables when it runs in a SLURM job, and from where
each rank landed. A mismatch fails the run at once with both sides in the message: a
benchmark on the wrong resources is worse than none.
"""

from __future__ import annotations

import os
import socket
import subprocess


def rank_placement() -> dict:
    """Where this rank runs: SLURM's node name when there is one (several SLURM nodes may
    share a host), else the host name; and how many CPUs it may use."""
    return {
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "host": socket.gethostname(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "pid": os.getpid(),
    }


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    head = value.split("(")[0]  # SLURM_TASKS_PER_NODE may read "2(x3)"
    return int(head) if head.isdigit() else None


def scontrol_job(job_id: str) -> dict:
    """The job as slurmctld describes it (`scontrol show job --oneliner`), as key -> value;
    empty when scontrol cannot tell."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def slurm_allocation() -> dict:
    """The allocation SLURM says this job has (empty outside SLURM). The variables come
    first; what they lack is asked of slurmctld, since launchers and the Snakemake SLURM
    executor's job steps pass on only some of them."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST", "SLURM_JOB_PARTITION")
    out = {k.removeprefix("SLURM_").lower(): os.environ.get(k, "") for k in keys}  # job_id, array_job_id, ...
    out.update(job_num_nodes=_int_env("SLURM_JOB_NUM_NODES"), ntasks=_int_env("SLURM_NTASKS"),
               ntasks_per_node=_int_env("SLURM_NTASKS_PER_NODE") or _int_env("SLURM_TASKS_PER_NODE"),
               cpus_per_task=_int_env("SLURM_CPUS_PER_TASK"))
    if None in (out["job_num_nodes"], out["cpus_per_task"]) or not out["job_nodelist"]:
        job = scontrol_job(out["job_id"])
        number = {k: int(v) for k, v in job.items() if v.isdigit()}
        out["job_num_nodes"] = out["job_num_nodes"] or number.get("NumNodes")
        out["ntasks"] = out["ntasks"] or number.get("NumTasks")
        out["cpus_per_task"] = out["cpus_per_task"] or number.get("CPUs/Task")
        out["job_nodelist"] = out["job_nodelist"] or job.get("NodeList", "")
        out["job_partition"] = out["job_partition"] or job.get("Partition", "")
        out["source"] = "environment and scontrol"
    else:
        out["source"] = "environment"
    return out


def problems(spec: dict, world_size: int, placements: list[dict], slurm: dict,
             allow_oversubscription: bool = False) -> list[str]:
    """Differences between the run's request and what it got; empty when it matches."""
    ranks = spec["nodes"] * spec["tasks_per_node"]
    found = []
    if world_size != ranks:
        found.append(f"asked for {ranks} MPI rank(s) ({spec['nodes']} node(s) x {spec['tasks_per_node']} task(s)), "
                     f"got {world_size}")
    nodes_used = sorted({p["node"] for p in placements})
    if slurm and len(nodes_used) != spec["nodes"]:
        found.append(f"asked for {spec['nodes']} node(s), ranks run on {len(nodes_used)}: {', '.join(nodes_used)}")
    if slurm:
        if slurm.get("job_num_nodes") not in (None, spec["nodes"]):
            found.append(f"asked for {spec['nodes']} node(s), SLURM job has {slurm['job_num_nodes']}")
        if slurm.get("cpus_per_task") not in (None, spec["threads_per_task"]):
            found.append(f"asked for {spec['threads_per_task']} thread(s) per task, "
                         f"SLURM gave {slurm['cpus_per_task']} CPU(s) per task")
    for p in placements:
        if p["cpus_usable"] < spec["threads_per_task"] and not allow_oversubscription:
            found.append(f"rank on {p['node']} may use {p['cpus_usable']} CPU(s) but runs "
                         f"{spec['threads_per_task']} thread(s)")
            break
    return found
