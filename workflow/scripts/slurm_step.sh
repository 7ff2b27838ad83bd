#!/bin/bash
# Runs its arguments (an srun or mpirun line) as a new job step of the SLURM job it is in.
#
# The Snakemake SLURM executor starts a rule in one of two places: inside a one-task job
# step of its own (`srun -n1 --cpus-per-task=...`), or, for a task of a job array, in the
# batch step with most SLURM_* variables removed. In the first place the variables of that
# one-task step (SLURM_NTASKS=1, SLURM_CPUS_PER_TASK, ...) would become the defaults of the
# run's srun; in both, Open MPI's mpirun would not find the allocation. So: keep only the
# job's identity, and give mpirun the node list from slurmctld. The run's own step is
# started with --overlap (in srun, and in the srun that mpirun uses to start its daemons),
# since the executor's one-task step holds part of the job's CPUs while it waits.
set -euo pipefail

for var in $(compgen -e); do
    case $var in
        SLURM_JOB_ID | SLURM_JOBID | SLURM_ARRAY_* | SLURM_CONF | SLURM_CLUSTER_NAME | SLURM_SUBMIT_*) ;;
        SLURM_* | SRUN_* | SBATCH_* | SALLOC_*) unset "$var" ;;
    esac
done

if [ "${1:-}" = mpirun ]; then
    job=$(scontrol show job --oneliner "$SLURM_JOB_ID")
    field() { echo "$job" | grep -o " $1=[^ ]*" | head -n1 | cut -d= -f2; }
    nodes=$(field NumNodes)
    tasks=$(field NumTasks)
    export SLURM_NODELIST SLURM_JOB_NODELIST SLURM_TASKS_PER_NODE SLURM_JOB_NUM_NODES SLURM_NNODES
    SLURM_NODELIST=$(field NodeList)
    SLURM_JOB_NODELIST=$SLURM_NODELIST
    SLURM_TASKS_PER_NODE="$((tasks / nodes))(x$nodes)"
    SLURM_JOB_NUM_NODES=$nodes
    SLURM_NNODES=$nodes
    export OMPI_MCA_plm_slurm_args="--overlap"
fi
exec "$@"
