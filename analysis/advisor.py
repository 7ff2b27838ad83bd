"""The configuration advisor: what a model will cost at shapes and sizes not run.

From one or more campaigns' runs (ok, undisturbed, not recording spikes) it fits, per
backend, the forms of spikescale.perf_model: the real-time factor, the construction time,
the peak memory of a rank and, where energy was measured, the power while simulating (so
the energy per synaptic event). It then predicts those figures, with intervals, for a model
size and resource shapes the campaign did not run, says how far each prediction reaches
outside what was measured, finds where communication would dominate as nodes are added, and
advises: the fastest configuration within a node budget, the most energy-efficient one, and
the one extra measurement that would narrow the prediction most (docs/advisor.md).

Every prediction is modelled and says so; the figures it stands on are measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from spikescale.analysis.advisor_fit import Fit, Prediction, fit
from spikescale.analysis.phase_breakdown import per_run, simulate_timers
from spikescale.analysis.scaling import is_disturbed, is_emulated, performance_runs, series_backend
from spikescale.models.pd14 import derived
from spikescale.perf_model import (CONSTRUCT_TERMS, MEMORY_TERMS, PARALLEL_BACKENDS, POWER_TERMS, RTF_TERMS,
                                   Configuration, input_deliveries_per_model_s, planned_configuration)

# figure -> its terms (measured_figures reads each figure from runs.csv)
FIGURE_TERMS = {"rtf": RTF_TERMS, "t_construct_s": CONSTRUCT_TERMS, "mem_rank_mb": MEMORY_TERMS,
                "power_w": POWER_TERMS}
MAX_NODES_DRAWN = 4096  # how far the extrapolation to many nodes is drawn


def usable_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs a model may be fitted to, the series each belongs to (backend, variant where
    several, '(emulated)' where emulated: the emulator's times are not SpiNNaker's), and the
    count of runs left out by reason."""
    left_out: dict[str, int] = {}
    perf = performance_runs(runs)
    if len(perf) < len(runs):
        left_out["recorded spikes (validation runs)"] = len(runs) - len(perf)
    ok = perf[perf["status"].astype(str) == "ok"].copy()
    if len(ok) < len(perf):
        left_out["not ok"] = len(perf) - len(ok)
    if ok.empty:  # e.g. every run failed
        return ok.assign(series=pd.Series(dtype=str)), left_out
    disturbed = is_disturbed(ok).astype(bool)
    if disturbed.any():
        left_out["disturbed (other processes took CPU time)"] = int(disturbed.sum())
    ok = ok[~disturbed]
    series = series_backend(ok)
    ok["series"] = series.where(~is_emulated(ok), series + " (emulated)")
    return ok, left_out


def configuration_of(row) -> Configuration:
    """A measured run's configuration: its measured sizes, spikes and events (the external
    input's deliveries follow from its model settings: spikescale.perf_model)."""
    t_model_s = float(row["t_model_s"])
    net = derived.derive(float(row["n_scaling"]), float(row["k_scaling"]), str(row["drive"]), _thalamic(row))
    return Configuration(str(row["backend"]), float(row["n_neurons"]), float(row["n_synapses"]),
                         float(row["synaptic_events"]) / t_model_s, float(row["n_spikes"]) / t_model_s,
                         input_deliveries_per_model_s(net, float(row["dt_ms"])), 1000.0 / float(row["dt_ms"]),
                         int(row["nodes"]), int(row["tasks_per_node"]), int(row["threads_per_task"]))


def measured_figures(runs: pd.DataFrame) -> pd.DataFrame:
    """The figures the models are fitted to, per run: NaN where a run lacks one."""
    num = lambda col: pd.to_numeric(runs[col], errors="coerce") if col in runs else pd.Series(np.nan, runs.index)  # noqa: E731
    mem = num("mem_peak_mb_rank_max").fillna(num("mem_peak_mb_max"))
    energy = num("energy_sim_j")
    kind = runs["energy_kind"].astype(str) if "energy_kind" in runs else pd.Series("", runs.index)
    # only energy a meter measured or accounting gave is fitted; a modelled one (the emulated
    # SpiNNaker board) would be a model fitted to a model
    energy = energy.where(~kind.str.startswith("modelled"))
    return pd.DataFrame({"rtf": num("rtf"), "t_construct_s": num("t_construct_s"), "mem_rank_mb": mem,
                         "power_w": energy / num("t_sim_s")}, index=runs.index)


@dataclass
class BackendModel:
    """The fitted models of one series (backend [variant] [(emulated)])."""

    series: str
    backend: str
    fits: dict[str, Fit]
    missing: dict[str, str]  # figure -> why it has no model
    rate_factors: dict[float, float]  # k_scaling -> measured synaptic events / those at full-scale rates
    drive: str
    dt_ms: float
    thalamic_input: bool
    configs: list[Configuration]
    sizes: list[tuple[float, float]]  # (n_scaling, k_scaling) measured
    n_runs: int

    def rate_factor(self, k_scaling: float) -> float:
        """The rates a model size will have, relative to PD14's full-scale rates: as measured at
        the sizes run; between them interpolated in log k_scaling; beyond the largest, towards 1
        at full scale (where the full-scale rates are the model's own: the K_scaling
        compensation brings rates closer to them as the in-degrees grow)."""
        ks = sorted(self.rate_factors)
        points = [(np.log(k), self.rate_factors[k]) for k in ks]
        if ks[-1] < 1.0:
            points.append((0.0, 1.0))
        x, y = zip(*points)
        return float(np.interp(np.log(k_scaling), x, y))

    def configuration(self, n_scaling: float, k_scaling: float, nodes: int, tasks: int, threads: int,
                      ) -> Configuration:
        return planned_configuration(self.backend, n_scaling, k_scaling, self.drive, self.dt_ms, nodes, tasks,
                                     threads, self.thalamic_input, self.rate_factor(k_scaling))

    def predict(self, config: Configuration) -> dict[str, Prediction | None]:
        out: dict[str, Prediction | None] = {name: (f.predict(config) if f else None)
                                             for name, f in self.fits.items()}
        for name in FIGURE_TERMS:
            out.setdefault(name, None)
        return out

    def extrapolation(self, config: Configuration) -> str:
        """How far ``config`` reaches outside the measured runs, in plain words."""
        parts = []
        syn = [c.n_synapses for c in self.configs]
        neu = [c.n_neurons for c in self.configs]
        if config.n_synapses > max(syn) * 1.001 or config.n_neurons > max(neu) * 1.001:
            parts.append(f"{config.n_synapses / max(syn):.3g} x the synapses and {config.n_neurons / max(neu):.3g} x "
                         "the neurons of the largest model measured")
        elif config.n_synapses < min(syn) * 0.999 or config.n_neurons < min(neu) * 0.999:
            parts.append(f"a model smaller than any measured ({config.n_synapses / min(syn):.2g} x the synapses)")
        for label, value, seen in (
                ("virtual processes", config.virtual_processes, [c.virtual_processes for c in self.configs]),
                ("MPI ranks", config.ranks, [c.ranks for c in self.configs]),
                ("nodes", config.nodes, [c.nodes for c in self.configs])):
            if value > max(seen):
                parts.append(f"{value} {label} (measured up to {max(seen)})")
        if config.nodes > 1 and max(c.nodes for c in self.configs) == 1:
            parts.append("communication between nodes never measured (its term is fitted from ranks on one node)")
        missing = sorted({t for f in self.fits.values() if f for t in f.leans_on_missing(config)})
        if missing:
            parts.append("leaves out terms the campaign did not determine: " + ", ".join(missing))
        return "extrapolation: " + "; ".join(parts) if parts else "within the measured range"

    def esyn_uj(self, config: Configuration, pred: dict) -> Prediction | None:
        """Energy per synaptic event: power x RTF / events per model second (µJ). Its interval
        multiplies the ends of the two intervals: wider than a joint one, never narrower."""
        if pred.get("power_w") is None or pred.get("rtf") is None:
            return None
        p, r = pred["power_w"], pred["rtf"]
        k = 1e6 / config.events_per_model_s
        return Prediction(p.value * r.value * k, p.low * r.low * k, p.high * r.high * k,
                          p.mean_low * r.mean_low * k, p.mean_high * r.mean_high * k)


# NEST's detailed kernel timers split the simulation phase (analysis/phase_breakdown.py): each
# part is fitted to the terms that drive it, and the RTF is their sum. The rest of t_sim
# (update, and what no timer covers) goes with the neuron updates.
TIMER_PARTS = {
    "deliver": (("time_deliver_spike_data",), ("core_s_per_event", "core_s_per_spike")),
    "communicate": (("time_gather_spike_data", "time_omp_synchronization_simulation"), ("s_serial", "s_per_extra_rank")),
    "update": ((), ("core_s_per_neuron_step", "core_s_per_input_event", "s_serial")),
}
_RTF_TERM = {t.name: t for t in RTF_TERMS}


def timer_parts(group: pd.DataFrame) -> pd.DataFrame | None:
    """Per run, each part of TIMER_PARTS per model second, from NEST's detailed timers in the
    campaign.h5 beside each run's runs.csv (runs.csv's ``_source``, as read_runs gives it);
    None unless every run has them."""
    if "_source" not in group or not (group["backend"].astype(str) == "nest").all():
        return None
    frames = []
    for source, runs in group.groupby("_source"):  # campaigns may share run ids (same spec): per campaign
        folder = Path(source) if Path(source).suffix != ".csv" else Path(source).parent
        h5 = folder / "campaign.h5"
        if not h5.is_file():
            return None
        own = per_run(simulate_timers(h5, list(runs["run_id"])))
        frames.append(own.reindex(runs["run_id"].to_numpy()).set_axis(runs.index))
    timers = pd.concat(frames).reindex(group.index)
    wanted = [timer for cols, _ in TIMER_PARTS.values() for timer in cols] + ["time_update"]
    if any(col not in timers for col in wanted) or not np.isfinite(timers[wanted].to_numpy(dtype=float)).all():
        return None
    t_model_s = group["t_model_s"].astype(float).to_numpy()
    parts = {part: timers[list(cols)].sum(axis=1).to_numpy() / t_model_s
             for part, (cols, _) in TIMER_PARTS.items() if cols}
    parts["update"] = group["rtf"].astype(float).to_numpy() - sum(parts.values())
    return pd.DataFrame(parts, index=group.index)


def fit_split(configs: list[Configuration], planned: list[Configuration], rtf: np.ndarray, parts: pd.DataFrame,
              resamples: int, seed: int) -> Fit:
    """The RTF as the sum of the timer parts, each fitted to its own terms (named
    '<part>: <term>'); one Fit whose constants, intervals and predictions are the sum's."""
    part_fits = []
    for part, (_, names) in TIMER_PARTS.items():
        terms = tuple(replace(_RTF_TERM[name], name=f"{part}: {name}") for name in names)
        # a part too small to time (a few microseconds) still counts as a cost, never as zero
        values = np.maximum(parts[part].to_numpy(dtype=float), 1e-6 * rtf)
        part_fits.append(fit(f"rtf ({part})", terms, configs, values, resamples, seed, planned))
    terms = tuple(t for f in part_fits for t in f.terms)
    used = [name for f in part_fits for name in f.used]
    constants = {k: v for f in part_fits for k, v in f.constants.items()}
    fitted = sum(f.design_fitted() for f in part_fits)
    rel = rtf / fitted - 1.0
    dof = max(len(rtf) - len(used), 1)
    merged = Fit("rtf", terms, used, {k: v for f in part_fits for k, v in f.dropped.items()}, constants,
                 np.hstack([f.boot for f in part_fits]), (rel - rel.mean()) * np.sqrt(len(rtf) / dof), list(configs),
                 np.asarray(rtf, float), seed, [f"fitted as the sum of NEST's timer parts ({', '.join(TIMER_PARTS)})"],
                 list(planned))
    return merged


def as_planned(configs: list[Configuration], group: pd.DataFrame) -> list[Configuration]:
    """The runs' configurations with events and spikes averaged over the runs of each model
    size: what decides which terms a campaign can determine (spikescale.analysis.advisor_fit)."""
    size = [(float(n), float(k)) for n, k in zip(group["n_scaling"], group["k_scaling"])]
    means = {}
    for key in set(size):
        mine = [c for c, s in zip(configs, size) if s == key]
        means[key] = (float(np.mean([c.events_per_model_s for c in mine])),
                      float(np.mean([c.spikes_per_model_s for c in mine])))
    return [replace(c, events_per_model_s=means[s][0], spikes_per_model_s=means[s][1]) for c, s in zip(configs, size)]


def fit_backends(runs: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> tuple[list[BackendModel], dict]:
    """One BackendModel per series with usable runs; and the runs left out, by reason."""
    usable, left_out = usable_runs(runs.reset_index(drop=True))  # campaigns concatenated repeat labels
    figures = measured_figures(usable)
    models = []
    for series, group in usable.groupby("series", sort=True):
        backend = str(group["backend"].iloc[0])
        configs = [configuration_of(row) for _, row in group.iterrows()]
        planned = as_planned(configs, group)
        fits, missing = {}, {}
        split = timer_parts(group)
        for name, terms in FIGURE_TERMS.items():
            values = figures.loc[group.index, name].to_numpy(dtype=float)
            if name == "rtf" and split is not None and np.isfinite(values).all() and (values > 0).all():
                fits[name] = fit_split(configs, planned, values, split, resamples, seed)
                continue
            good = np.isfinite(values) & (values > 0)
            if not good.any():
                missing[name] = ("no energy measured (energy_source of the runs says why)" if name == "power_w"
                                 else f"no run has {name}")
                fits[name] = None
                continue
            fits[name] = fit(name, terms, [c for c, g in zip(configs, good) if g], values[good], resamples, seed,
                             [c for c, g in zip(planned, good) if g])
        expected = [planned_configuration(backend, float(r["n_scaling"]), float(r["k_scaling"]), str(r["drive"]),
                                          float(r["dt_ms"]), 1, 1, 1, _thalamic(r)).events_per_model_s
                    for _, r in group.iterrows()]
        ratios = pd.Series(np.array([c.events_per_model_s for c in configs]) / np.array(expected), index=group.index)
        ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
        factors = {float(k): float(v) for k, v in ratios.groupby(group.loc[ratios.index, "k_scaling"]).median().items()}
        first = group.iloc[0]
        models.append(BackendModel(
            series=str(series), backend=backend, fits=fits, missing=missing, rate_factors=factors or {1.0: 1.0},
            drive=str(first["drive"]), dt_ms=float(first["dt_ms"]), thalamic_input=_thalamic(first),
            configs=configs, sizes=sorted({(float(r["n_scaling"]), float(r["k_scaling"])) for _, r in group.iterrows()}),
            n_runs=len(group)))
    return models, left_out


def _thalamic(row) -> bool:
    return str(row.get("thalamic_input", False)).strip().lower() in ("true", "1", "yes")


# ---------------------------------------------------------------- advice

@dataclass(frozen=True)
class Machine:
    """What the advice may use: a node budget and what a node has."""

    cores_per_node: int
    memory_per_node_mb: float
    node_budget: int
    # the campaign's own machine, where the next measurement can run (the advice's machine may
    # be another one, given on the command line)
    nodes_max_here: int
    cores_per_node_here: int
    memory_per_node_mb_here: float


def candidate_shapes(backend: str, machine: Machine) -> list[tuple[int, int, int]]:
    """Shapes that use whole nodes without oversubscribing their cores: nodes 1, 2, 4, ... up
    to the budget (and the budget itself), ranks per node a divisor of the cores, the rest
    threads. A backend that runs on one core gets one shape: more resources do not help it."""
    if backend not in PARALLEL_BACKENDS:
        return [(1, 1, 1)]
    nodes = sorted({n for n in (2 ** k for k in range(32)) if n <= machine.node_budget} | {machine.node_budget})
    cores = machine.cores_per_node
    layouts = [(t, cores // t) for t in range(1, cores + 1) if cores % t == 0]
    return [(n, t, h) for n in nodes for t, h in layouts]


def shape_problem(model: BackendModel, size: tuple[float, float], config: Configuration, pred: dict,
                  machine: Machine) -> str:
    """Why a configuration cannot run ('' if it can): memory per node, NEST's connection cap."""
    mem = pred.get("mem_rank_mb")
    if mem is not None and mem.value * config.tasks_per_node > machine.memory_per_node_mb:
        return (f"needs about {mem.value * config.tasks_per_node:,.0f} MB per node, a node has "
                f"{machine.memory_per_node_mb:,.0f} MB")
    if model.backend == "nest":
        net = derived.derive(*size, model.drive, model.thalamic_input)
        need = derived.min_virtual_processes_nest(net)
        if config.virtual_processes < need:
            return f"NEST's connection cap needs at least {need} virtual processes"
    return ""


def predictions_table(model: BackendModel, n_scaling: float, k_scaling: float, machine: Machine) -> pd.DataFrame:
    """Predicted figures of every candidate shape at one model size."""
    rows = []
    for nodes, tasks, threads in candidate_shapes(model.backend, machine):
        config = model.configuration(n_scaling, k_scaling, nodes, tasks, threads)
        pred = model.predict(config)
        esyn = model.esyn_uj(config, pred)
        row = {"series": model.series, "backend": model.backend, "n_scaling": n_scaling, "k_scaling": k_scaling,
               "nodes": nodes, "tasks_per_node": tasks, "threads_per_task": threads,
               "virtual_processes": config.virtual_processes}
        for name, p in (("rtf", pred["rtf"]), ("t_construct_s", pred["t_construct_s"]),
                        ("mem_node_mb", _per_node(pred["mem_rank_mb"], tasks)), ("esyn_uj", esyn)):
            row[name] = p.value if p else np.nan
            row[f"{name}_low"] = p.low if p else np.nan
            row[f"{name}_high"] = p.high if p else np.nan
        row["node_s_per_model_s"] = row["rtf"] * nodes
        row["runs"] = shape_problem(model, (n_scaling, k_scaling), config, pred, machine) or "yes"
        row["extrapolation"] = model.extrapolation(config)
        row["basis"] = "modelled (fitted to measured runs)"
        rows.append(row)
    return pd.DataFrame(rows)


def _per_node(p: Prediction | None, tasks: int) -> Prediction | None:
    if p is None:
        return None
    return Prediction(*(v * tasks for v in (p.value, p.low, p.high, p.mean_low, p.mean_high)))


@dataclass
class Advice:
    series: str
    fastest: dict | None
    efficient: dict | None  # lowest predicted E_syn
    efficient_reason: str  # why there is no energy advice ('' if there is)
    least_node_time: dict | None  # lowest node-seconds per model second (a stand-in where no energy)
    next_measurement: dict | None
    next_reason: str
    communication_dominates_at_nodes: int | None
    communication_reason: str
    curve: pd.DataFrame  # predicted RTF over nodes (the extrapolation drawn)
    table: pd.DataFrame


def advise(model: BackendModel, n_scaling: float, k_scaling: float, machine: Machine) -> Advice:
    table = predictions_table(model, n_scaling, k_scaling, machine)
    runnable = table[table["runs"] == "yes"]
    fastest = _best(runnable, "rtf")
    efficient, efficient_reason = None, ""
    if model.fits.get("power_w") is None:
        efficient_reason = model.missing.get("power_w", "no energy model")
    else:
        efficient = _best(runnable, "esyn_uj")
    least = _best(runnable, "node_s_per_model_s")
    table["advice"] = ""
    for label, best in (("fastest", fastest), ("most energy-efficient", efficient),
                        ("least node-time", least)):
        if best is not None:
            i = table.index[(table["nodes"] == best["nodes"]) & (table["tasks_per_node"] == best["tasks_per_node"])
                            & (table["threads_per_task"] == best["threads_per_task"])]
            table.loc[i, "advice"] = table.loc[i, "advice"].map(lambda a, label=label: f"{a}; {label}" if a else label)
    tasks = fastest["tasks_per_node"] if fastest else 1
    threads = fastest["threads_per_task"] if fastest else machine.cores_per_node
    curve, dominates, dom_reason = communication_curve(model, n_scaling, k_scaling, tasks, threads)
    nxt, nxt_reason = next_measurement(model, fastest, n_scaling, k_scaling, machine)
    return Advice(model.series, fastest, efficient, efficient_reason, least, nxt, nxt_reason, dominates, dom_reason,
                  curve, table)


def _best(table: pd.DataFrame, column: str) -> dict | None:
    """The row with the lowest figure; among those within 1 % of it, the one with fewest nodes."""
    values = table[column].dropna()
    if values.empty:
        return None
    near = table.loc[values.index[values <= values.min() * 1.01]]
    return near.sort_values(["nodes", "virtual_processes", column]).iloc[0].to_dict()


def communication_curve(model: BackendModel, n_scaling: float, k_scaling: float, tasks: int, threads: int,
                        ) -> tuple[pd.DataFrame, int | None, str]:
    """Predicted RTF and its parts over nodes 1, 2, 4, ... with one node's layout; the first
    node count where the communication part exceeds the rest (None if not within
    MAX_NODES_DRAWN, or not predicted, with the reason)."""
    rtf = model.fits.get("rtf")
    rows = []
    nodes = 1
    measured_nodes = max(c.nodes for c in model.configs)
    while rtf is not None and nodes <= MAX_NODES_DRAWN:
        config = model.configuration(n_scaling, k_scaling, nodes, tasks, threads)
        p = rtf.predict(config)
        parts = {kind: 0.0 for kind in ("work", "serial", "communication")}
        for term in rtf.terms:
            if term.name in rtf.used:
                parts[term.kind] += rtf.constants[term.name] * term.feature(config)
        rows.append({"series": model.series, "nodes": nodes, "tasks_per_node": tasks, "threads_per_task": threads,
                     "rtf": p.value, "rtf_low": p.low, "rtf_high": p.high, "work": parts["work"],
                     "serial": parts["serial"], "communication": parts["communication"],
                     "extrapolated": nodes > measured_nodes})
        nodes *= 2
    curve = pd.DataFrame(rows)
    if rtf is None:
        return curve, None, "no RTF model"
    comm = [t.name for t in rtf.terms if t.kind == "communication"]
    if not any(name in rtf.used for name in comm):
        why = next((rtf.dropped[name] for name in comm if name in rtf.dropped), "no communication term")
        return curve, None, f"not predicted: {why} (run with 2 or more MPI ranks to measure it)"
    if model.backend not in PARALLEL_BACKENDS:
        return curve, None, f"{model.backend} runs on one core: adding nodes does not apply"
    rest = curve["work"] + curve["serial"]
    high = sum(rtf.interval(name)[1] for name in comm if name in rtf.used)
    curve["communication_high"] = high * (curve["nodes"] * tasks - 1)
    dom, dom_high = curve[curve["communication"] > rest], curve[curve["communication_high"] > rest]
    upper = (f"at the upper end of its interval ({high:.3g} s per extra rank per model second) from "
             f"{int(dom_high['nodes'].iloc[0])} nodes" if not dom_high.empty
             else f"not even at the upper end of its interval ({high:.3g} s per extra rank per model second)")
    basis = f"the communication term was fitted from ranks on {measured_nodes} node(s)"
    if dom.empty:
        return curve, None, (f"communication stays below the rest up to {MAX_NODES_DRAWN} nodes at the fitted value; "
                             f"{upper}; {basis}")
    return curve, int(dom["nodes"].iloc[0]), f"extrapolated: {basis}; {upper}"


def next_measurement(model: BackendModel, fastest: dict | None, n_scaling: float, k_scaling: float,
                     machine: Machine) -> tuple[dict | None, str]:
    """Among runs the campaign's machine can make (its nodes, no oversubscription, a model
    size that fits its memory), the one that most narrows the predicted RTF and memory at
    the advised configuration (the relative variances of the fitted constants, as weighted
    least squares gives them). Sizes tried: those measured, the target, and three steps from the
    largest measured towards it."""
    rtf, mem = model.fits.get("rtf"), model.fits.get("mem_rank_mb")
    if fastest is None or rtf is None:
        return None, "no configuration to narrow (nothing runs or no RTF model)"
    target = model.configuration(n_scaling, k_scaling, int(fastest["nodes"]), int(fastest["tasks_per_node"]),
                                 int(fastest["threads_per_task"]))
    here = Machine(machine.cores_per_node_here, machine.memory_per_node_mb_here, machine.nodes_max_here,
                   machine.nodes_max_here, machine.cores_per_node_here, machine.memory_per_node_mb_here)
    sizes = set(model.sizes) | {(n_scaling, k_scaling)}
    largest = max(model.sizes, key=by_synapses)
    if n_scaling * k_scaling > largest[0] * largest[1]:  # steps towards the target, geometric in n and k
        for step in (0.25, 0.5, 0.75):
            sizes.add((float(f"{largest[0] * (n_scaling / largest[0]) ** step:.2g}"),
                       float(f"{largest[1] * (k_scaling / largest[1]) ** step:.2g}")))
    base = _variance(rtf, mem, target, [])
    best = None
    for size in sorted(sizes):
        for shape in candidate_shapes(model.backend, here):
            config = model.configuration(*size, *shape)
            pred = model.predict(config)
            if shape_problem(model, size, config, pred, here):
                continue
            gain = 1.0 - np.sqrt(_variance(rtf, mem, target, [config]) / base) if base > 0 else 0.0
            cost_s = (pred["t_construct_s"].value if pred["t_construct_s"] else 0.0) + pred["rtf"].value
            if best is None or gain > best["narrows"] + 1e-9 or (abs(gain - best["narrows"]) <= 1e-9
                                                                  and cost_s < best["cost_s_per_model_s"]):
                best = {"n_scaling": size[0], "k_scaling": size[1], "nodes": shape[0], "tasks_per_node": shape[1],
                        "threads_per_task": shape[2], "narrows": float(gain), "cost_s_per_model_s": float(cost_s)}
    if best is None:
        return None, "no run fits this machine"
    return best, ""


def _variance(rtf: Fit, mem: Fit | None, target: Configuration, extra: list[Configuration]) -> float:
    v = rtf.relative_variance_at(target, extra)
    if mem is not None:
        v += mem.relative_variance_at(target, extra)
    return v


# ---------------------------------------------------------------- the advisor's own held-back check

HELD_BACK_FIGURES = ("rtf", "t_construct_s", "mem_rank_mb")
HELD_BACK_COLUMNS = ["n_scaling", "k_scaling", "shape", "figure", "runs", "measured", "predicted", "low", "high",
                     "error", "inside"]


def by_synapses(size: tuple[float, float]):
    """Sort key of a model size (n_scaling, k_scaling): its synapses grow with n x k."""
    return size[0] * size[1], size


def against_measured(model: BackendModel, runs: pd.DataFrame) -> list[dict]:
    """Runs ``model`` was not fitted to (usable runs), per size and shape: the median measured
    figure beside the predicted one, its interval, the error and whether it fell inside."""
    figures = measured_figures(runs)
    rows = []
    for (n, k, *shape), runs_at in runs.groupby(["n_scaling", "k_scaling", "nodes", "tasks_per_node",
                                                  "threads_per_task"]):
        pred = model.predict(model.configuration(float(n), float(k), *(int(v) for v in shape)))
        for figure in HELD_BACK_FIGURES:
            measured = float(figures.loc[runs_at.index, figure].median())
            p = pred.get(figure)
            if p is None or not np.isfinite(measured):
                continue
            rows.append({"n_scaling": float(n), "k_scaling": float(k), "shape": "x".join(str(int(v)) for v in shape),
                         "figure": figure, "runs": len(runs_at), "measured": measured, "predicted": p.value,
                         "low": p.low, "high": p.high, "error": p.value / measured - 1.0,
                         "inside": bool(p.low <= measured <= p.high)})
    return rows


def holdout_check(runs: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How well the models extrapolate, measured on the campaign itself: per series with three
    or more model sizes, the models are fitted without the largest size (the most synapses) and
    predict its runs (median per shape). One row per series, shape and figure: measured,
    predicted, interval, error, and whether the measurement fell inside the interval."""
    usable, _ = usable_runs(runs.reset_index(drop=True))
    rows = []
    for series, group in usable.groupby("series", sort=True):
        sizes = sorted({(float(n), float(k)) for n, k in zip(group["n_scaling"], group["k_scaling"])}, key=by_synapses)
        if len(sizes) < 3:
            continue
        largest = (group["n_scaling"].astype(float) == sizes[-1][0]) & (group["k_scaling"].astype(float) == sizes[-1][1])
        models, _ = fit_backends(group[~largest], resamples, seed)
        fitted_sizes = ", ".join(f"{n:g}/{k:g}" for n, k in sizes[:-1])
        rows += [{"series": series, "fitted_sizes": fitted_sizes, **row} for row in against_measured(models[0], group[largest])]
    return pd.DataFrame(rows, columns=["series", *HELD_BACK_COLUMNS[:2], "fitted_sizes", *HELD_BACK_COLUMNS[2:]])
