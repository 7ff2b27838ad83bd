"""Did the run get what it asked for? Checked at the start of every run.

A run asks for nodes x tasks per node (MPI ranks) x threads per task, and a GPU run (its
software entry says gpu: true) for the machine's gpus_per_node GPUs on each node. What it got
is read from MPI (world size), from slurmctld and SLURM's variables when it runs in a SLURM
job, and from where each rank landed and which GPUs it can see. A mismatch fails the run at
once with both sides in the message: a benchmark on the wrong resources is worse than none.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess


def gpus_per_node_asked(software: dict | None, machine: dict) -> int:
    """GPUs a run asks for on each of its nodes: all of the machine's (gpus_per_node) when its
    software entry says gpu: true, else none. The configuration check refuses gpu: true on a
    machine without GPUs, so a GPU run never asks for none without saying so."""
    if software and software.get("gpu"):
        return int(machine.get("gpus_per_node", 0))
    return 0


def gpus_visible() -> tuple[int, str]:
    """How many GPUs this process can use, and how that was found. CUDA_VISIBLE_DEVICES when
    set (SLURM sets it in every job step that holds GPUs, to the step's GPUs on this node;
    CUDA reads nothing else); otherwise every GPU `nvidia-smi -L` lists (nothing confines the
    process); otherwise none."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        # "NoDevFiles": SLURM's word for GPUs granted without device files
        ids = [d for d in listed.split(",") if d.strip() and d.strip() != "NoDevFiles"]
        return len(ids), f"CUDA_VISIBLE_DEVICES={listed}"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0, "no CUDA_VISIBLE_DEVICES, no nvidia-smi"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return 0, f"nvidia-smi -L failed: {exc}"
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()), "nvidia-smi -L"


def rank_placement() -> dict:
    """Where this rank runs: SLURM's node name when there is one (several SLURM nodes may
    share a host), else the host name; how many CPUs and GPUs it may use."""
    gpus, gpus_source = gpus_visible()
    return {
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "host": socket.gethostname(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpus_visible": gpus,
        "gpus_source": gpus_source,
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


def job_gpus_per_node(job: dict) -> int | None:
    """GPUs per node of a job as `scontrol show job` describes it: its allocated TRES
    (AllocTRES ...,gres/gpu=<all nodes'>) where slurmctld counts GPUs among them, else the
    job's request per node (TresPerNode=gres:gpu:<n>, gres:gpu:<type>:<n> or gres/gpu...),
    0 when it has neither, None when the record is not there to tell."""
    if not job:
        return None
    nodes = int(job["NumNodes"]) if job.get("NumNodes", "").isdigit() else None
    total = re.search(r"(?:^|,)gres/gpu=(\d+)", job.get("AllocTRES", ""))
    if total and nodes:
        return int(total.group(1)) // nodes
    per_node = re.search(r"(?:^|,)gres[:/]gpu(?::[A-Za-z0-9_.]+)?[:=](\d+)", job.get("TresPerNode", ""))
    return int(per_node.group(1)) if per_node else 0


def slurm_allocation(ask_slurmctld: bool = True) -> dict:
    """The allocation this run has in SLURM (empty outside SLURM), in two views.

    job_*: the job as slurmctld holds it (`scontrol show job`): what sbatch granted, which is
    what a job array hands to every task. step_*: the job step the run is in, from the
    variables srun sets. Checking both catches a job that got the wrong resources as well as
    a launcher that split them wrongly. Where scontrol cannot tell, the job view falls back
    to the variables, and `job_source` says so.
    """
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    out = {"job_id": os.environ["SLURM_JOB_ID"],
           "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
           "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
           "step_id": os.environ.get("SLURM_STEP_ID", ""),
           "step_num_nodes": _int_env("SLURM_STEP_NUM_NODES") or _int_env("SLURM_NNODES"),
           "step_ntasks": _int_env("SLURM_STEP_NUM_TASKS") or _int_env("SLURM_NTASKS"),
           "step_cpus_per_task": _int_env("SLURM_CPUS_PER_TASK"),
           # set by slurmd in a step that holds GPUs; absent in one without
           "step_gpus_on_node": _int_env("SLURM_GPUS_ON_NODE") or 0}
    job = scontrol_job(out["job_id"]) if ask_slurmctld else {}
    if job:
        number = {k: int(v) for k, v in job.items() if v.isdigit()}
        out.update(job_num_nodes=number.get("NumNodes"), job_ntasks=number.get("NumTasks"),
                   job_cpus_per_task=number.get("CPUs/Task"), job_gpus_per_node=job_gpus_per_node(job),
                   job_nodelist=job.get("NodeList", ""),
                   job_partition=job.get("Partition", ""), job_source="scontrol")
        out["array_job_id"] = out["array_job_id"] or job.get("ArrayJobId", "")
        out["array_task_id"] = out["array_task_id"] or job.get("ArrayTaskId", "")
    else:
        out.update(job_num_nodes=_int_env("SLURM_JOB_NUM_NODES"), job_ntasks=_int_env("SLURM_NTASKS"),
                   job_cpus_per_task=_int_env("SLURM_CPUS_PER_TASK"), job_gpus_per_node=None,
                   job_nodelist=os.environ.get("SLURM_JOB_NODELIST", ""),
                   job_partition=os.environ.get("SLURM_JOB_PARTITION", ""), job_source="environment")
    return out


def gpus_per_node(placements: list[dict]) -> int:
    """GPUs the run could use on each node: the fewest any rank could see."""
    return min((p.get("gpus_visible", 0) for p in placements), default=0)


def problems(spec: dict, world_size: int, placements: list[dict], slurm: dict,
             allow_oversubscription: bool = False, gpus_asked: int = 0) -> list[str]:
    """Differences between the run's request and what it got; empty when it matches.
    ``gpus_asked``: GPUs per node (gpus_per_node_asked); 0, and GPUs are not checked."""
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
        if slurm.get("job_ntasks") not in (None, ranks):
            found.append(f"asked for {ranks} task(s), SLURM job has {slurm['job_ntasks']}")
        if slurm.get("job_cpus_per_task") not in (None, spec["threads_per_task"]):
            found.append(f"asked for {spec['threads_per_task']} thread(s) per task, "
                         f"SLURM gave {slurm['job_cpus_per_task']} CPU(s) per task")
        if slurm.get("step_cpus_per_task") not in (None, spec["threads_per_task"], slurm.get("job_cpus_per_task")):
            found.append(f"asked for {spec['threads_per_task']} thread(s) per task, "
                         f"the job step has {slurm['step_cpus_per_task']} CPU(s) per task")
    if gpus_asked:
        if slurm and slurm.get("job_gpus_per_node") not in (None, gpus_asked):
            found.append(f"asked for {gpus_asked} GPU(s) per node, SLURM job has {slurm['job_gpus_per_node']}")
        for p in placements:
            # In SLURM the step's GPUs are exactly what the rank may use; outside SLURM
            # nothing confines the run, and a machine may have more GPUs than it uses.
            seen = p.get("gpus_visible", 0)
            if seen < gpus_asked or (slurm and seen != gpus_asked):
                found.append(f"asked for {gpus_asked} GPU(s) per node, rank on {p['node']} can use {seen} "
                             f"({p.get('gpus_source', 'not recorded')})")
                break
    for p in placements:
        if p["cpus_usable"] < spec["threads_per_task"] and not allow_oversubscription:
            found.append(f"rank on {p['node']} may use {p['cpus_usable']} CPU(s) but runs "
                         f"{spec['threads_per_task']} thread(s)")
            break
    return found
