"""Published PD14 performance results: the community's reference points.

The one copy in this repository of the table in Senk et al. (2026), Neuromorph. Comput.
Eng. 6:012001, as the INM-6 microcircuit-PD14-model repository also lists it: full-scale
PD14 (77,169 neurons, about 3e8 synapses), real-time factor and energy per synaptic event
of the simulation phase, with the drive each study used. Every entry is as published; a study
that published no energy has esyn_uj None (never a guess).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class CommunityResult:
    study: str
    platform: str
    nodes: int  # compute nodes, or boards for SpiNNaker (node_unit)
    rtf: float  # real-time factor: wall-clock time of the simulation phase / model time
    esyn_uj: float | None  # energy per synaptic event (microjoules); None where not published
    drive: str  # external drive: "DC" or "Poisson"
    node_unit: str = "node"

    @property
    def nodes_text(self) -> str:
        return f"{self.nodes} {self.node_unit}{'s' if self.nodes != 1 else ''}"

    @property
    def label(self) -> str:
        """Study, platform, size and drive: what a reference point is labelled with."""
        return f"{self.study}: {self.platform}, {self.nodes_text}, {self.drive}"


_XEON = "NEST, 2x Xeon E5-2680v3/node"
_EPYC = "NEST, 2x EPYC 7702/node"

# Senk et al. 2026, Neuromorph. Comput. Eng. 6:012001, table of PD14 performance results
# (full scale). "same" in that table is spelled out here.
COMMUNITY: tuple[CommunityResult, ...] = (
    CommunityResult("van Albada 2018", _XEON, 12, 2.465, 9.94, "DC"),
    CommunityResult("van Albada 2018", _XEON, 3, 4.584, 5.82, "DC"),
    CommunityResult("van Albada 2018", "SpiNNaker", 6, 20.0, 4.4, "DC", node_unit="board"),
    CommunityResult("Knight & Nowotny 2018", "GeNN, Tesla V100", 1, 1.838, 0.47, "Poisson"),
    CommunityResult("Rhodes 2019", "SpiNNaker", 12, 1.0, 0.60, "DC", node_unit="board"),
    CommunityResult("Golosio 2021", "NEST GPU, RTX 2080 Ti", 1, 1.055, 0.25, "Poisson"),
    CommunityResult("Knight 2021", "GeNN, Titan RTX", 1, 0.70, None, "Poisson"),
    CommunityResult("Kurth 2022", _EPYC, 1, 0.67, 0.33, "DC"),
    CommunityResult("Kurth 2022", _EPYC, 2, 0.53, 0.48, "DC"),
    CommunityResult("Golosio 2023", "NEST GPU, RTX 4090", 1, 0.386, 0.104, "DC"),
    CommunityResult("Golosio 2023", "GeNN, RTX 4090", 1, 0.272, 0.074, "Poisson"),
    CommunityResult("Kauth 2023", "neuroAIx FPGA", 35, 0.05, 0.048, "DC"),
)


def community_table() -> pd.DataFrame:
    """The table as a DataFrame (esyn_uj NaN where not published), with each point's label."""
    frame = pd.DataFrame([asdict(r) | {"label": r.label} for r in COMMUNITY])
    frame["esyn_uj"] = pd.to_numeric(frame["esyn_uj"], errors="coerce")
    return frame
