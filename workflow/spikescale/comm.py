"""The ranks of one run. Without MPI a run is one rank; the harness only ever asks for a
barrier, a gather to rank 0, and which rank it is."""

from __future__ import annotations


class SingleRank:
    rank = 0
    size = 1

    def barrier(self) -> None:
        pass

    def gather(self, obj) -> list:
        return [obj]


def world() -> SingleRank:
    return SingleRank()
