# Sourced before mpirun inside a job of the Snakemake SLURM executor. Its job-step plugin
# removes the SLURM_* variables before running a rule, and Open MPI's mpirun needs
# SLURM_NODELIST and SLURM_TASKS_PER_NODE to find the allocation: read them back from
# scontrol (SLURM_JOB_ID survives).
job=$(scontrol show job --oneliner "$SLURM_JOB_ID")
SLURM_NODELIST=$(echo "$job" | grep -o ' NodeList=[^ ]*' | cut -d= -f2)
nodes=$(echo "$job" | grep -o ' NumNodes=[0-9]*' | cut -d= -f2)
tasks=$(echo "$job" | grep -o ' NumTasks=[0-9]*' | cut -d= -f2)
SLURM_TASKS_PER_NODE="$((tasks / nodes))(x$nodes)"
SLURM_JOB_NUM_NODES=$nodes
export SLURM_NODELIST SLURM_TASKS_PER_NODE SLURM_JOB_NUM_NODES
