"""Figure style shared by every spikescale figure: Paul Tol's colour-blind-safe palettes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on cluster nodes

# Paul Tol, "bright" qualitative scheme (colour-blind safe).
TOL_BRIGHT = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")
PHASE_COLORS = {"t_create_s": TOL_BRIGHT[4], "t_connect_s": TOL_BRIGHT[0], "t_compile_s": TOL_BRIGHT[6],
                "t_load_s": TOL_BRIGHT[5], "t_presim_s": TOL_BRIGHT[3], "t_sim_s": TOL_BRIGHT[1]}
PHASE_LABELS = {"t_create_s": "create", "t_connect_s": "connect", "t_compile_s": "compile (Brian2) / map (SpiNNaker)",
                "t_load_s": "load (Brian2 program, emulator)", "t_presim_s": "presimulate", "t_sim_s": "simulate"}


def apply() -> None:
    matplotlib.rcParams.update({"figure.dpi": 120, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
                                "axes.spines.top": False, "axes.spines.right": False, "font.size": 9})
