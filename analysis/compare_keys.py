"""What a comparison row is keyed by, and its name in tables and figures: shared by the
statistics (spikescale.analysis.compare) and the figure (compare_figure), which import it
instead of each other."""

from __future__ import annotations

MODEL_KEY = ["backend", "n_scaling", "k_scaling", "drive", "t_model_s"]
SHAPE = ["nodes", "tasks_per_node", "threads_per_task"]
KEY = MODEL_KEY + SHAPE


def describe_key(row) -> str:
    """'nest 1x1x2, N x0.1 K x0.1 poisson 1 s' (without the backend when comparing backends)."""
    backend = row.get("backend")
    backend = f"{backend} " if isinstance(backend, str) and backend else ""
    return (f"{backend}{int(row['nodes'])}x{int(row['tasks_per_node'])}x{int(row['threads_per_task'])}, "
            f"N x{row['n_scaling']:g} K x{row['k_scaling']:g} {row['drive']} {row['t_model_s']:g} s")
