"""The run summary, declared once: every column of runs.csv (and of campaign.h5's /summary).

Each column says its name (units in the name), unit, type, meaning, which backends fill it
and where it comes from. ``spikescale.store`` builds runs.csv from this list, the loaders
order their columns by it, the figures in the summary a run records (``/summary``) are
checked against it (tests/test_columns.py), and the table in docs/hdf5-layout.md is made
from it: ``python -m spikescale.columns`` prints it.

Sources: ``spec`` the run as planned (/spec); ``record`` the record's root (status, times);
``summary`` the run's own figures (/summary, written by the harness: copied as they are);
``provenance`` and ``allocation`` those groups; ``collect`` computed when the campaign is
collected (checksums, validation verdicts, SLURM accounting).
"""

from __future__ import annotations

from dataclasses import dataclass

from spikescale.phases import PHASES

ALL = "all"


@dataclass(frozen=True)
class Column:
    name: str
    unit: str  # "" where the figure has none (counts, text, flags)
    kind: str  # str, int, float, bool
    meaning: str
    source: str  # spec, record, summary, provenance, allocation, collect
    backends: str = ALL  # "all", or the backends that fill it, separated by ", "


def _c(name, unit, kind, source, meaning, backends=ALL) -> Column:
    return Column(name, unit, kind, meaning, source, backends)


_RANK_STATS = ("min", "mean", "max")


def _over_ranks(figure: str, unit: str, kind: str, what: str) -> tuple[Column, ...]:
    """min, mean and max over MPI ranks (beNNch kept only the mean, which hides imbalance)."""
    return tuple(_c(f"{figure}_rank_{stat}", unit, kind, "summary", f"{what}: {stat} over MPI ranks")
                 for stat in _RANK_STATS)


_PHASE = {phase.name: phase for phase in PHASES}


def _phase_time(name: str) -> Column:
    phase = _PHASE[name]
    return _c(phase.column, "s", "float", "summary",
              f"wall time of phase {phase.name} ({phase.meaning}), maximum over ranks", phase.backends)


SPINNAKER = "spinnaker"
SPINNAKER_EMULATED = "spinnaker (emulated)"

# SpiNNaker runs' own figures (docs/spinnaker.md): hardware or emulated and why; emulated runs
# add the board's modelled times (the measured t_*_s columns are then the emulator's), the
# mapping sPyNNaker made, and the real-time estimate.
PLATFORM = (
    _c("platform_mode", "", "str", "summary", "hardware or emulated", SPINNAKER),
    _c("platform_reason", "", "str", "summary", "why: the board's answer, or the machine file's fallback", SPINNAKER),
    _c("rtf_modelled", "", "float", "summary", "the board's modelled real-time factor", SPINNAKER_EMULATED),
    _c("t_presim_modelled_s", "s", "float", "summary", "the board's modelled time for the presimulation",
       SPINNAKER_EMULATED),
    _c("t_sim_modelled_s", "s", "float", "summary", "the board's modelled time for the simulation",
       SPINNAKER_EMULATED),
    _c("t_load_modelled_s", "s", "float", "summary", "modelled loading time (SDRAM bytes / assumed bandwidth)",
       SPINNAKER_EMULATED),
    _c("t_extract_modelled_s", "s", "float", "summary", "modelled spike extraction time (recorded bytes / "
       "assumed bandwidth)", SPINNAKER_EMULATED),
    _c("spinnaker_chips_used", "", "int", "summary", "chips with at least one application core", SPINNAKER),
    _c("spinnaker_cores_used", "", "int", "summary", "application cores (neuron, synapse, Poisson source)", SPINNAKER),
    _c("spinnaker_neuron_cores", "", "int", "summary", "neuron cores", SPINNAKER),
    _c("spinnaker_synapse_cores", "", "int", "summary", "synapse cores", SPINNAKER),
    _c("spinnaker_source_cores", "", "int", "summary", "Poisson source cores", SPINNAKER),
    _c("spinnaker_neurons_per_core_max", "", "int", "summary", "the largest neuron slice of a core", SPINNAKER),
    _c("spinnaker_routing_entries", "", "int", "summary", "multicast routing entries before compression", SPINNAKER),
    _c("spinnaker_routing_entries_max_per_chip", "", "int", "summary", "routing entries of the fullest chip",
       SPINNAKER),
    _c("spinnaker_boards", "", "int", "summary", "boards of the machine mapped onto", SPINNAKER),
    _c("spinnaker_time_scale_factor", "", "int", "summary", "how many times slower than real time the board runs",
       SPINNAKER),
    _c("spinnaker_load_vs_realtime_reference", "", "float", "summary", "the busiest core's synaptic events per "
       "second over the real-time operating point of Rhodes et al. 2019", SPINNAKER_EMULATED),
    _c("spinnaker_realtime_plausible", "", "bool", "summary", "that ratio is at most 1", SPINNAKER_EMULATED),
    _c("spinnaker_realtime_estimate", "", "str", "summary", "what the estimate is (a comparison, not a cycle count)",
       SPINNAKER_EMULATED),
    _c("spinnaker_ring_buffer_saturations", "", "int", "summary", "16-bit ring-buffer slots that saturated",
       SPINNAKER_EMULATED),
    _c("spynnaker_mapping_s", "s", "float", "summary", "sPyNNaker's mapping stage", SPINNAKER),
    _c("spynnaker_loading_s", "s", "float", "summary", "sPyNNaker's loading stage (data generation)", SPINNAKER),
    _c("spynnaker_running_s", "s", "float", "summary", "sPyNNaker's running stage (on a board)", SPINNAKER),
)

COLUMNS: tuple[Column, ...] = (
    # --- what ran: the run as planned ------------------------------------------------
    _c("run_id", "", "str", "spec", "stable id: backend, shape, seed, repetition and a hash of the run's parameters"),
    _c("campaign", "", "str", "spec", "the experiment's name"),
    _c("backend", "", "str", "spec", "nest, brian2, brian2genn, genn or spinnaker"),
    _c("platform", "", "str", "summary", "what the simulation ran on: cpu, gpu or spinnaker (brian2genn in GeNN's "
       "CPU mode, genn on its single_threaded_cpu backend: cpu)"),
    _c("emulated", "", "bool", "summary", "the platform was emulated in software (SpiNNaker without a board); its "
       "times and energy are then modelled"),
    _c("model", "", "str", "spec", "the model (pd14)"),
    _c("n_scaling", "", "float", "spec", "PD14's N_scaling: fraction of the neurons"),
    _c("k_scaling", "", "float", "spec", "PD14's K_scaling: fraction of the in-degrees"),
    _c("drive", "", "str", "spec", "external drive: poisson or dc"),
    _c("t_model_s", "s", "float", "spec", "model time of the simulation phase (t_sim_ms / 1000)"),
    _c("seed", "", "int", "spec", "the run's random seed"),
    _c("repetition", "", "int", "spec", "repetition of the same run (0, 1, ...)"),
    _c("nodes", "", "int", "spec", "nodes the run asked for"),
    _c("tasks_per_node", "", "int", "spec", "MPI ranks per node"),
    _c("threads_per_task", "", "int", "spec", "threads per MPI rank"),
    # --- how it ended and what it measured ---------------------------------------------
    _c("status", "", "str", "record", "ok or failed"),
    _c("error", "", "str", "record", "'<Type>: <message>' of a failed run, else empty"),
    _phase_time("create"), _phase_time("connect"),
    _c("t_construct_s", "s", "float", "summary", "network construction: t_create_s + t_connect_s"),
    _phase_time("presimulate"), _phase_time("simulate"),
    _c("rtf", "", "float", "summary", "real-time factor: t_sim_s / t_model_s"),
    _c("n_neurons", "", "int", "summary", "neurons of the network"),
    _c("n_synapses", "", "int", "summary", "recurrent synapses as the simulator holds them, summed over ranks"),
    _c("n_spikes", "", "int", "summary", "spikes in the simulation phase, summed over ranks"),
    _c("synaptic_events", "", "float", "summary", "spikes x out-degree (method in synaptic_events_method)"),
    _c("mem_peak_mb_max", "MB", "float", "summary",
       "peak resident memory (the rank's process and the programs it runs), maximum over phases and ranks"),
    _c("energy_sim_j", "J", "float", "summary", "energy of the simulation phase (docs/energy.md)"),
    _c("energy_source", "", "str", "summary", "which meters counted, and their kind, or 'unavailable: <reason>'"),
    _c("esyn_uj", "uJ", "float", "summary", "energy per synaptic event: energy_sim_j / synaptic_events"),
    _c("validation", "", "str", "collect", "the validation verdict against the NEST reference ensemble, or why "
       "the run was not checked"),
    _c("host", "", "str", "provenance", "host name of the run's first rank"),
    _c("slurm_job_id", "", "str", "provenance", "SLURM job id (empty off SLURM)"),
    _c("started_at", "", "str", "record", "start, ISO 8601 UTC"),
    _c("git_commit", "", "str", "provenance", "commit of the repository the run came from"),
    # --- beyond the required set -------------------------------------------------------
    _c("machine", "", "str", "spec", "the machine file's name"),
    _c("variant", "", "str", "spec", "the software variant: the name of the software file (config/software/) "
       "the run's environment came from"),
    _c("virtual_processes", "", "int", "spec", "nodes x tasks_per_node x threads_per_task"),
    _c("record_spikes", "", "bool", "spec", "spikes recorded (validation runs) or only counted"),
    _c("t_presim_model_s", "s", "float", "spec", "model time of the presimulation (t_presim_ms / 1000)"),
    _c("dt_ms", "ms", "float", "spec", "simulation step"),
    _c("thalamic_input", "", "bool", "spec", "PD14's thalamic pulse switched on"),
    _c("failed_phase", "", "str", "record", "the phase a failed run died in"),
    _phase_time("setup"), _phase_time("collect"),
    _c("t_total_s", "s", "float", "summary", "from the harness's start to its record, wall clock"),
    _c("rate_mean_hz", "Hz", "float", "summary", "mean firing rate in the simulation phase"),
    _c("synaptic_events_method", "", "str", "summary", "how synaptic_events was counted"),
    _c("mem_peak_scope", "", "str", "summary", "phase: the peak was reset at each phase; process: peak so far"),
    _c("nest_version", "", "str", "provenance", "nest-simulator's version", "nest"),
    _c("nest_detailed_timers", "", "bool", "provenance", "NEST was built with detailed timers "
       "(-Dwith-detailed-timers=ON: time_update, time_deliver_spike_data, ... in the record); the PyPI wheel "
       "has none. Empty where the run failed before NEST was loaded", "nest"),
    _c("git_dirty", "", "bool", "provenance", "the repository had uncommitted changes"),
    _c("finished_at", "", "str", "record", "end, ISO 8601 UTC"),
    _c("file_sha256", "", "str", "collect", "checksum of the run file that was collected"),
    # where it ran: SLURM array job and task, and the nodes its ranks ran on
    _c("slurm_array_job_id", "", "str", "allocation", "SLURM array job id (empty off SLURM)"),
    _c("slurm_array_task_id", "", "str", "allocation", "SLURM array task id"),
    _c("slurm_step_id", "", "str", "allocation", "the run's SLURM job step"),
    _c("nodes_used", "", "str", "allocation", "the nodes the ranks ran on (JSON list)"),
    _c("gpus_per_node", "", "int", "allocation", "GPUs the run could use on each node, the fewest any rank saw: "
       "those CUDA_VISIBLE_DEVICES lists (SLURM sets it to a GPU step's GPUs), else those nvidia-smi lists; a GPU "
       "run (software gpu: true) fails unless it has the machine's gpus_per_node (docs/running.md#gpus)"),
    # energy beyond energy_sim_j
    _c("energy_kind", "", "str", "summary", "measured, accounted or modelled: the kind of energy_*_j"),
    _c("energy_unavailable", "", "str", "summary", "meters that were unavailable, and why"),
    _c("energy_construct_j", "J", "float", "summary", "energy of create + connect"),
    _c("energy_presim_j", "J", "float", "summary", "energy of the presimulation"),
    _c("idle_power_w", "W", "float", "summary", "the same meters' power before the network existed"),
    _c("energy_sim_net_j", "J", "float", "summary", "energy_sim_j above the idle power"),
    # energy SLURM accounted for the run's job step (whole step, not phase-resolved)
    _c("energy_job_j", "J", "float", "collect", "energy SLURM accounted for the run's job step (sacct)"),
    _c("energy_job_source", "", "str", "collect", "where energy_job_j came from, or why it is empty"),
    # energy at the power outlet: the metered simulation energy plus what the machine file declares
    # (energy.outlet), computed at collect (docs/energy.md#energy-at-the-power-outlet)
    _c("energy_outlet_sim_j", "J", "float", "collect", "energy of the simulation phase at the power outlet: "
       "(energy_sim_j / psu_efficiency + declared network, storage and idle held nodes' watts x t_sim_s) x pue"),
    _c("esyn_outlet_uj", "uJ", "float", "collect", "energy per synaptic event at the outlet: "
       "energy_outlet_sim_j / synaptic_events"),
    _c("energy_outlet_source", "", "str", "collect", "the kind of the node part (measured, accounted, modelled), "
       "the declarations added and their source, or 'unavailable: <reason>'"),
    _c("weight_factor", "", "float", "spec", "1 for PD14; anything else is a deliberately wrong model "
       "(validation must flag it)"),
    # over MPI ranks (the run-level figure is the maximum: a run is as slow as its slowest rank)
    _c("n_ranks", "", "int", "summary", "MPI ranks"),
    *_over_ranks("t_sim_s", "s", "float", "wall time of the simulation"),
    _c("imbalance_sim", "", "float", "summary", "t_sim_s / t_sim_s_rank_mean (1 = balanced)"),
    *_over_ranks("mem_peak_mb", "MB", "float", "peak resident memory"),
    *_over_ranks("n_spikes", "", "float", "spikes in the simulation phase"),
    _phase_time("compile"), _phase_time("load"),
    _c("brian2_version", "", "str", "provenance", "Brian2's version", "brian2, brian2genn"),
    _c("pygenn_version", "", "str", "provenance", "PyGeNN's version (GeNN 5)", "genn"),
    _c("spynnaker_version", "", "str", "provenance", "sPyNNaker's version", SPINNAKER),
    *PLATFORM,
    # disturbed runs (spikescale.disturbance, docs/running.md#disturbed-runs)
    _c("disturbed", "", "bool", "summary", "other processes took more than the machine's "
       "disturbance.max_other_cpu_share of the CPUs the run could use (phases create to simulate); the "
       "figures leave such runs out of their means; empty: not measured"),
    _c("cpu_other_share", "", "float", "summary", "CPU time other processes took on the run's CPUs over its "
       "phases create to simulate / (that wall time x CPUs in the run's affinity mask), maximum over nodes"),
    _c("disturbance_unavailable", "", "str", "summary", "why cpu_other_share is empty (e.g. the run failed "
       "before its simulation ended)"),
    _c("cpu_freq_mhz", "MHz", "float", "summary", "CPU frequency when phase create started, mean over the "
       "run's CPUs, lowest over nodes"),
    _c("cpu_freq_source", "", "str", "summary", "where cpu_freq_mhz came from (cpufreq or /proc/cpuinfo), or "
       "'unavailable: <reason>'"),
    _c("load_1min_at_start", "", "float", "summary", "the node's 1-minute load average when the run started, "
       "highest over nodes"),
    # where ranks and threads ran (spikescale.placement, docs/running.md#provenance)
    _c("threads_share_cores", "", "bool", "summary", "threads that should each have had a core shared one: two "
       "busy threads last seen on one core during simulate, or more threads per node than cores in the ranks' "
       "CPU sets without allow_oversubscription; empty: not sampled"),
    _c("cpu_sets", "", "str", "summary", "the CPUs each rank could run on when it started, e.g. 'r0:0-1 r1:2-3'"),
    _c("pinning", "", "str", "summary", "the machine file's pinning block as key=value, or 'none declared'"),
)

NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
BY_NAME = {column.name: column for column in COLUMNS}
# The run's own figures, copied as they are from its /summary attributes.
FROM_SUMMARY: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.source == "summary")
SOURCES = ("spec", "record", "summary", "provenance", "allocation", "collect")
KINDS = ("str", "int", "float", "bool")


def filled_by(backend: str, emulated: bool = False) -> tuple[str, ...]:
    """The summary columns a backend's runs fill (their records' /summary has each; a
    figure that could not be measured is there as empty)."""
    def fills(column: Column) -> bool:
        named = column.backends.split(", ")
        return column.backends == ALL or backend in named or (emulated and f"{backend} (emulated)" in named)

    return tuple(c.name for c in COLUMNS if c.source == "summary" and fills(c))


def markdown_table() -> str:
    """The runs.csv table of docs/hdf5-layout.md."""
    lines = ["| column | unit | type | from | backends | meaning |", "|---|---|---|---|---|---|"]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | {c.unit} | {c.kind} | {c.source} | {c.backends} | {c.meaning} |")
    return "\n".join(lines) + "\n"


DOC_BEGIN = "<!-- runs.csv columns: generated by `python -m spikescale.columns`; do not edit by hand -->"
DOC_END = "<!-- end of runs.csv columns -->"


def main() -> int:
    print(DOC_BEGIN)
    print(markdown_table(), end="")
    print(DOC_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
