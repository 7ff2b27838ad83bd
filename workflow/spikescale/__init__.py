"""spikescale: scaling experiments of spiking network simulators (the workflow's Python)."""
