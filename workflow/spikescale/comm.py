"""The ranks of one run. The harness only ever asks for a barrier, a gather to rank 0,
which rank it is and how many there are.

Without an MPI launcher a run is one rank (``SingleRank``). Under ``mpirun`` or ``srun``
the run uses mpi4py (``MpiRanks``). Whether a process was started by an MPI launcher is
read from the variables the launchers set, so a run never imports MPI it does not need.
"""

from __future__ import annotations

import importlib.util
import os

# Set by Open MPI's mpirun, by PMI-1/PMI-2 launchers, by some PMIx launchers, and by srun for
# every task of a step. (Slurm's PMIx plugin sets no size variable: the size comes from the
# PMIx server, so for srun --mpi=pmix only SLURM_STEP_NUM_TASKS tells.)
_LAUNCHER_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS")


class SingleRank:
    rank = 0
    size = 1

    def barrier(self) -> None:
        pass

    def gather(self, obj) -> list:
        return [obj]

    def allgather(self, obj) -> list:
        return [obj]

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)


class MpiRanks:
    def __init__(self):
        from mpi4py import MPI  # imported only for MPI runs; NEST and mpi4py share MPI_COMM_WORLD

        self._comm = MPI.COMM_WORLD
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()

    def barrier(self) -> None:
        self._comm.Barrier()

    def gather(self, obj) -> list:
        return self._comm.gather(obj, root=0)

    def allgather(self, obj) -> list:
        return self._comm.allgather(obj)

    def abort(self, code: int = 1) -> None:
        self._comm.Abort(code)


def launched_ranks() -> int:
    """Number of ranks the launcher started, 1 when no MPI launcher is involved."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def require_mpi_support() -> None:
    """Fail clearly, and early, when started as several ranks by an environment without
    MPI. (NEST's PyPI wheel would otherwise exit at import with a FATAL message and no
    record; a NEST without MPI under a launcher makes every rank simulate the whole network.)"""
    ranks = launched_ranks()
    if ranks > 1 and importlib.util.find_spec("mpi4py") is None:
        raise RuntimeError(
            f"started as {ranks} MPI ranks, but this environment has no MPI support (no mpi4py; NEST from "
            "PyPI is built without MPI): use the MPI build (make nest-mpi; software kind venv, name "
            "nest-mpi) or a site NEST with MPI")


def world():
    """The run's ranks; call require_mpi_support() first for a clear error without MPI."""
    return MpiRanks() if launched_ranks() > 1 else SingleRank()
