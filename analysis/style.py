"""Figure style shared by every spikescale figure: Paul Tol's colour-blind-safe palettes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on cluster nodes

# Paul Tol, "bright" qualitative scheme (colour-blind safe).
TOL_BRIGHT = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")
# One colour per phase the figures stack (spikescale.phases.STACKED, which also has the labels).
PHASE_COLORS = {"create": TOL_BRIGHT[4], "connect": TOL_BRIGHT[0], "compile": TOL_BRIGHT[6], "load": TOL_BRIGHT[5],
                "presimulate": TOL_BRIGHT[3], "simulate": TOL_BRIGHT[1]}


def apply() -> None:
    matplotlib.rcParams.update({"figure.dpi": 120, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
                                "axes.spines.top": False, "axes.spines.right": False, "font.size": 9})
