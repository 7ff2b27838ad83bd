"""The configuration advisor's command: fit, predict, advise; a table, the terms, a text and a figure.

    python -m spikescale.analysis.advise results/<campaign> [results/<other> ...]
        [--scale 1.0 | --n-scaling N --k-scaling K] [--node-budget 16]
        [--cores-per-node C] [--memory-per-node-mb M]
        [--table advisor.csv] [--terms advisor_terms.csv] [--text advisor.txt] [--png advisor.png]

The machine (cores and memory per node, the nodes it offers) comes from the first
campaign's config_resolved.json unless given; the model size from the first campaign's
model unless given; the node budget defaults to the machine's nodes_max. docs/advisor.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from spikescale.analysis.advisor import Advice, BackendModel, Machine, advise, fit_backends, holdout_check
from spikescale.analysis.advisor_fit import DEFAULT_RESAMPLES, LEVEL
from spikescale.analysis.compare import read_runs


def read_campaigns(sources: list[Path]) -> tuple[pd.DataFrame, dict | None]:
    """The runs of every campaign given (folders or runs.csv), and the first one's resolved
    configuration (None where there is none)."""
    frames = [read_runs(s) for s in sources]
    first = sources[0] if sources[0].suffix != ".csv" else sources[0].parent
    resolved = first / "config_resolved.json"
    config = json.loads(resolved.read_text(encoding="utf-8")) if resolved.is_file() else None
    return pd.concat(frames, ignore_index=True), config


def machine_of(config: dict | None, args) -> Machine:
    """The machine advised for: the campaign's (config_resolved.json), or what the command line
    says; the next measurement is always for the campaign's own machine."""
    m = (config or {}).get("machine", {})
    cores = args.cores_per_node or m.get("cores_per_node")
    memory = args.memory_per_node_mb or m.get("memory_per_node_mb")
    if not cores or not memory:
        raise ValueError("no machine known: give --cores-per-node and --memory-per-node-mb (or a campaign folder "
                         "with its config_resolved.json)")
    nodes_here = int(m.get("nodes_max", 1))
    budget = args.node_budget or (config or {}).get("experiment", {}).get("advisor", {}).get("node_budget") or nodes_here
    return Machine(int(cores), float(memory), int(budget), nodes_here, int(m.get("cores_per_node", cores)),
                   float(m.get("memory_per_node_mb", memory)))


def target_size(config: dict | None, args) -> tuple[float, float]:
    if args.scale is not None:
        return args.scale, args.scale
    advisor = (config or {}).get("experiment", {}).get("advisor", {})
    model = (config or {}).get("model", {})
    n = args.n_scaling or advisor.get("n_scaling") or model.get("n_scaling")
    k = args.k_scaling or advisor.get("k_scaling") or model.get("k_scaling")
    if n is None or k is None:
        raise ValueError("no model size: give --scale (or --n-scaling and --k-scaling)")
    return float(n), float(k)


def _fmt(p_row: dict, name: str, unit: str, digits: str = ".3g") -> str:
    value = p_row.get(name)
    if value is None or not np.isfinite(value):
        return f"{name}: no model"
    low, high = p_row[f"{name}_low"], p_row[f"{name}_high"]
    return f"{format(value, digits)}{unit} [{format(low, digits)}, {format(high, digits)}]"


def describe_configuration(row: dict) -> str:
    shape = f"{int(row['nodes'])} node(s) x {int(row['tasks_per_node'])} rank(s) x {int(row['threads_per_task'])} thread(s)"
    parts = [f"RTF {_fmt(row, 'rtf', '')}", f"construction {_fmt(row, 't_construct_s', ' s')}",
             f"peak memory {_fmt(row, 'mem_node_mb', ' MB', ',.0f')} per node"]
    if np.isfinite(row.get("esyn_uj", np.nan)):
        parts.append(f"E_syn {_fmt(row, 'esyn_uj', ' uJ')}")
    return f"{shape}: " + ", ".join(parts) + f" ({row['extrapolation']})"


TERMS_COLUMNS = ["series", "figure", "term", "kind", "meaning", "value", "low", "high", "runs", "status"]


def terms_table(models: list[BackendModel]) -> pd.DataFrame:
    rows = []
    for model in models:
        for figure, f in model.fits.items():
            if f is None:
                rows.append({"series": model.series, "figure": figure, "term": "", "status":
                             f"no model: {model.missing[figure]}"})
                continue
            for term in f.terms:
                low, high = f.interval(term.name)
                rows.append({"series": model.series, "figure": figure, "term": term.name, "kind": term.kind,
                             "meaning": term.meaning, "value": f.constants.get(term.name, np.nan), "low": low,
                             "high": high, "runs": f.n_runs,
                             "status": "fitted" if term.name in f.used else f"not determined: {f.dropped[term.name]}"})
    return pd.DataFrame(rows, columns=TERMS_COLUMNS)


def advice_text(models: list[BackendModel], advices: list[Advice], left_out: dict, size: tuple[float, float],
                machine: Machine, sources: list[Path]) -> str:
    lines = [f"Configuration advisor: fitted to {', '.join(str(s) for s in sources)}",
             f"Target: PD14 at n_scaling {size[0]:g}, k_scaling {size[1]:g}; node budget {machine.node_budget} "
             f"node(s) of {machine.cores_per_node} cores and {machine.memory_per_node_mb:,.0f} MB.",
             f"Every figure below is modelled (fitted to the measured runs; {LEVEL:.0%} intervals a new run is "
             "expected in), never measured: docs/advisor.md."]
    if left_out:
        lines.append("Runs left out of the fits: " + "; ".join(f"{n} {why}" for why, n in left_out.items()) + ".")
    for model, adv in zip(models, advices):
        lines.append("")
        sizes = ", ".join(f"{n:g}/{k:g}" for n, k in model.sizes)
        vps = sorted({c.virtual_processes for c in model.configs})
        ranks = sorted({c.ranks for c in model.configs})
        nodes = sorted({c.nodes for c in model.configs})
        lines.append(f"{model.series}: {model.n_runs} runs at n/k_scaling {sizes}, virtual processes {vps}, "
                     f"ranks {ranks}, nodes {nodes}; {model.drive} drive; synaptic events measured at "
                     + ", ".join(f"{v:.3g}" for v in model.rate_factors.values())
                     + f" x the full-scale rates (k_scaling {', '.join(f'{k:g}' for k in model.rate_factors)}); "
                     f"at the target {model.rate_factor(size[1]):.3g} x")
        for figure, f in model.fits.items():
            if f is None:
                lines.append(f"  {figure}: no model ({model.missing[figure]})")
                continue
            fitted = ", ".join(f"{n} {f.constants[n]:.3g} [{f.interval(n)[0]:.3g}, {f.interval(n)[1]:.3g}]"
                               for n in f.used)
            lines.append(f"  {figure} = {fitted}; relative scatter {np.std(f.rel_residuals):.1%}")
            for name, why in f.dropped.items():
                lines.append(f"    {name}: not determined ({why})")
            lines.extend(f"    note: {note}" for note in f.notes)
        if adv.fastest is None:
            runs_not = adv.table["runs"].iloc[0] if not adv.table.empty else "no shape"
            lines.append(f"  no configuration within the budget can run this model: {runs_not}")
        else:
            lines.append(f"  fastest: {describe_configuration(adv.fastest)}")
            if adv.efficient is not None:
                lines.append(f"  most energy-efficient: {describe_configuration(adv.efficient)}")
            else:
                lines.append(f"  most energy-efficient: unavailable: {adv.efficient_reason}")
                if adv.least_node_time is not None:
                    lines.append(f"  least node-time (node-seconds per model second; a cost, not energy): "
                                 f"{describe_configuration(adv.least_node_time)}")
        if adv.communication_dominates_at_nodes is not None:
            lines.append(f"  communication predicted to dominate from {adv.communication_dominates_at_nodes} nodes "
                         f"({adv.communication_reason})")
        else:
            lines.append(f"  communication dominance: {adv.communication_reason}")
        if adv.next_measurement is not None:
            n = adv.next_measurement
            lines.append(f"  next measurement: n/k_scaling {n['n_scaling']:g}/{n['k_scaling']:g} at "
                         f"{n['nodes']}x{n['tasks_per_node']}x{n['threads_per_task']} narrows the RTF and memory "
                         f"predictions at the fastest configuration by about {n['narrows']:.0%} (about "
                         f"{n['cost_s_per_model_s']:.3g} s of construction and simulation per model second, on "
                         "the campaign's own machine)")
        else:
            lines.append(f"  next measurement: none ({adv.next_reason})")
        if len(model.sizes) == 1:
            lines.append("  One model size measured: what grows with the model cannot be told from what does not "
                         "(the terms not determined above), so predictions at other sizes are not supported; add "
                         "campaigns of other sizes (advisor.fit_also).")
        if max(vps) <= 2 or max(nodes) == 1:
            lines.append(f"  Little room to extrapolate: these runs used at most {max(vps)} virtual processes on "
                         f"{max(nodes)} node(s). Predictions for more cores or nodes carry the work and communication "
                         "terms far beyond what was seen; use them to plan runs, not as results.")
    return "\n".join(lines) + "\n"


def run(sources: list[Path], size: tuple[float, float] | None, machine_args, resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0):
    runs, config = read_campaigns(sources)
    machine = machine_of(config, machine_args)
    size = size or target_size(config, machine_args)
    models, left_out = fit_backends(runs, resamples, seed)
    advices = [advise(m, *size, machine) for m in models]
    held_back = holdout_check(runs, resamples, seed)
    return models, advices, left_out, size, machine, held_back


def held_back_text(models: list[BackendModel], held_back: pd.DataFrame) -> str:
    """The advisor's own check of how far its models can be trusted to extrapolate."""
    lines = ["", "Held back by the advisor (how well it extrapolates here): the largest model size predicted "
             "from the smaller ones, never fitted to it:"]
    for model in models:
        mine = held_back[held_back["series"] == model.series]
        if mine.empty:
            lines.append(f"  {model.series}: no check: {len(model.sizes)} model size(s) measured; three or more let "
                         "the advisor predict the largest from the others")
            continue
        first = mine.iloc[0]
        lines.append(f"  {model.series}: n/k_scaling {first['n_scaling']:g}/{first['k_scaling']:g} from "
                     f"{first['fitted_sizes']}:")
        for figure, part in mine.groupby("figure", sort=False):
            errors = ", ".join(f"{r.shape} {r.error:+.0%}" + ("" if r.inside else " (outside its interval)")
                               for r in part.itertuples())
            lines.append(f"    {figure}: {errors}")
    return "\n".join(lines) + "\n"


def nothing_to_fit(left_out: dict) -> str:
    """The advice of a campaign without a run to fit (every run failed, was disturbed or
    recorded spikes): why, so that the rest of its analysis still completes."""
    why = "; ".join(f"{n} {reason}" for reason, n in left_out.items()) or "the campaigns have no runs"
    return f"Configuration advisor: no ok, undisturbed performance run to fit ({why}); no advice.\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="campaign folders (results/<name>) or runs.csv files")
    parser.add_argument("--scale", type=float, help="model size: n_scaling = k_scaling = SCALE")
    parser.add_argument("--n-scaling", type=float)
    parser.add_argument("--k-scaling", type=float)
    parser.add_argument("--node-budget", type=int, help="most nodes the advice may use (default: the machine's)")
    parser.add_argument("--cores-per-node", type=int)
    parser.add_argument("--memory-per-node-mb", type=float)
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--table", type=Path, help="predictions per candidate configuration (CSV)")
    parser.add_argument("--terms", type=Path, help="fitted terms with their intervals (CSV)")
    parser.add_argument("--curve", type=Path, help="predicted RTF over nodes, the extrapolation drawn (CSV)")
    parser.add_argument("--text", type=Path, help="the advice as text")
    parser.add_argument("--held-back", type=Path, help="the largest model size predicted from the others (CSV)")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    for name in ("scale", "n_scaling", "k_scaling", "node_budget", "cores_per_node", "memory_per_node_mb"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name.replace('_', '-')} {value}: must be positive")
    if args.resamples < 100:
        parser.error(f"--resamples {args.resamples}: at least 100")
    try:
        models, advices, left_out, size, machine, held_back = run(args.sources, None, args, args.resamples)
    except (OSError, ValueError) as exc:
        print(f"advise: {exc}", file=sys.stderr)
        return 2
    text = (advice_text(models, advices, left_out, size, machine, args.sources) + held_back_text(models, held_back)
            if models else nothing_to_fit(left_out))
    tables = [a.table for a in advices] or [pd.DataFrame(columns=["series", "nodes", "rtf"])]
    curves = [a.curve for a in advices] or [pd.DataFrame(columns=["series", "nodes", "rtf"])]
    outputs = {args.table: lambda p: pd.concat(tables).to_csv(p, index=False, float_format="%.6g"),
               args.terms: lambda p: terms_table(models).to_csv(p, index=False, float_format="%.6g"),
               args.curve: lambda p: pd.concat(curves).to_csv(p, index=False, float_format="%.6g"),
               args.text: lambda p: p.write_text(text, encoding="utf-8"),
               args.held_back: lambda p: held_back.to_csv(p, index=False, float_format="%.6g")}
    for out, write in outputs.items():
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            write(out)
    if args.png:
        from spikescale.analysis.advisor_figure import advisor_figure
        from spikescale.analysis.plots import save
        save(advisor_figure(models, advices, size, machine.memory_per_node_mb), args.png, args.pdf)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
