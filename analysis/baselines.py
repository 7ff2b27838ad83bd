"""A campaign against its committed reference values: ``python -m spikescale.analysis.baselines``
(``make check EXPERIMENT=<name>``).

A baseline file (config/baselines/<name>.yaml, schema workflow/schemas/baselines.schema.yaml)
lists references as ReFrame's `reference` does: per machine, backend, software version,
model and resource shape, a figure (METRICS of spikescale.analysis.compare; more is worse
for each) with its value and a relative tolerance. Per reference, the campaign's ok,
undisturbed performance runs that match it give the median of the figure and its 95 %
percentile bootstrap interval (seeded), and:

    interval entirely above value x (1 + tol)      -> regressed (the check fails)
    interval entirely below value / (1 + tol)      -> improved (passes; update the baseline)
    otherwise                                      -> met

A reference that cannot be judged (no matching runs, fewer than min_runs, the figure empty)
fails the check too: a benchmark that stopped running must not pass a CI. Exit status: 0
when every reference is met or improved, 1 when one regressed or could not be judged, 2 when
the baseline file or runs.csv cannot be read (the message names the file, key, value and
what is allowed).

``--suggest`` prints a baseline file made from a campaign's medians instead, to commit once
its numbers are accepted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import yaml
from spikescale.analysis.compare import (
    CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    METRICS,
    Resampler,
    prepare,
    read_runs,
)
from spikescale.analysis.compare_keys import SHAPE
from spikescale.errors import ConfigError, ConfigProblem
from spikescale.schemas import SCHEMA_DIR

SOFTWARE_COLUMNS = ("variant", "nest_version", "brian2_version", "pygenn_version", "spynnaker_version")
VERSION_OF = {"nest": "nest_version", "brian2": "brian2_version", "brian2genn": "brian2_version",
              "genn": "pygenn_version", "spinnaker": "spynnaker_version", "spinnaker (emulated)": "spynnaker_version"}
MODEL_COLUMNS = ("n_scaling", "k_scaling", "drive", "t_model_s")
OUTCOMES = ("regressed", "not judged", "improved", "met")


MAX_FILE_BYTES = 1 << 20  # a baseline file of 10,000 references is about 2 MB of YAML in block style; flow style less


class _NoAliases(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, as the configuration's reader (spikescale.config,
    which the analysis side may not import): nested aliases expand into gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


# JSON Schema counts 2.0 and true as integers; a shape's thread count is written whole.
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=(
    jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))))
_TYPE_NAMES = {"integer": "a whole number", "number": "a number", "string": "a string", "object": "a mapping",
               "array": "a list"}


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed(error: jsonschema.ValidationError) -> str:
    """What the schema allows, in the configuration's words (spikescale.config._allowed)."""
    v, s = error.validator, error.validator_value
    words = {"enum": lambda: "allowed: " + ", ".join(repr(x) for x in s),
             "type": lambda: "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in ([s] if isinstance(s, str) else s)),
             "minimum": lambda: f"must be >= {s}", "exclusiveMinimum": lambda: f"must be > {s}",
             "maximum": lambda: f"must be <= {s}", "minItems": lambda: f"must list at least {s} value(s)",
             "maxItems": lambda: f"must list at most {s} value(s)", "maxLength": lambda: f"must have at most {s} characters",
             "pattern": lambda: f"must match {s} (letters, digits, '_', '.', '-')"}
    text = words[v]() if v in words else error.message
    if v == "type" and s == "string" and isinstance(error.instance, (int, float)):
        text += ' (YAML read it as a number: quote it, e.g. "3.10")'
    return text


def _problems(data, schema: dict, file: str) -> list[ConfigProblem]:
    problems = []
    for err in sorted(_Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = list(err.absolute_path)
        if err.validator == "additionalProperties":
            known = sorted(err.schema.get("properties", {}))
            problems += [ConfigProblem(file, _dotted([*where, k]), err.instance[k], "unknown key; allowed keys: "
                                       + ", ".join(known)) for k in sorted(set(err.instance) - set(known))]
        elif err.validator == "required":
            problems += [ConfigProblem(file, _dotted([*where, k]), None, "missing required key")
                         for k in err.validator_value if k not in err.instance]
        else:
            problems.append(ConfigProblem(file, _dotted(where), err.instance, _allowed(err)))
    return problems


def _read(path: Path) -> tuple[object, list[ConfigProblem]]:
    """The YAML of a regular file of bounded size; (data, problems)."""
    if not path.exists():
        options = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        return None, [ConfigProblem(str(path), "(file)", path.stem,
                                    f"no file {path}; available: {', '.join(options) or 'none'}")]
    if not path.is_file():
        return None, [ConfigProblem(str(path), "(file)", str(path), "must be a regular file")]
    with open(path, "rb") as fh:
        raw = fh.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        return None, [ConfigProblem(str(path), "(file)", f"more than {MAX_FILE_BYTES:,} bytes",
                                    f"a baseline file may have at most {MAX_FILE_BYTES:,} bytes")]
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_NoAliases)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [ConfigProblem(str(path), "(file)", " ".join(str(exc).split())[:200], "not valid UTF-8 YAML "
                                    "(plain YAML only; tags and aliases are refused)")]
    if not isinstance(data, dict):
        return None, [ConfigProblem(str(path), "(file)", type(data).__name__, "must be a YAML mapping")]
    return data, []


def load_baselines(path: Path) -> dict:
    """The checked baseline file with its defaults; ConfigError naming every problem (file,
    key, value, what is allowed)."""
    data, problems = _read(Path(path))
    if not problems:
        with open(SCHEMA_DIR / "baselines.schema.yaml", encoding="utf-8") as fh:
            schema = yaml.safe_load(fh)
        problems = _problems(data, schema, str(path))
        if not problems:
            # the defaults are the schema's, written once there (only the top level has any)
            data = {k: sub["default"] for k, sub in schema["properties"].items() if "default" in sub} | data
            problems = _duplicates(data, str(path))
    if problems:
        raise ConfigError(problems)
    return data


def _identity(ref: dict) -> tuple:
    return (ref["machine"], ref["backend"], tuple(sorted(ref.get("software", {}).items())),
            tuple(sorted(ref.get("model", {}).items())), tuple(ref["shape"][k] for k in SHAPE), ref["metric"])


def _duplicates(data: dict, file: str) -> list[ConfigProblem]:
    seen, problems = {}, []
    for i, ref in enumerate(data["references"]):
        key = _identity(ref)
        if key in seen:
            problems.append(ConfigProblem(file, f"references[{i}]", ref, f"the same figure as references[{seen[key]}]; "
                                          "each machine, backend, software, model, shape and metric once"))
        seen.setdefault(key, i)
    return problems


def matching(ok: pd.DataFrame, ref: dict) -> pd.DataFrame:
    """The runs (compare.prepare's) a reference speaks of."""
    mask = (ok["machine"].astype(str) == ref["machine"]) & (ok["backend"] == ref["backend"])
    for k in SHAPE:
        mask &= ok[k] == ref["shape"][k]
    for col, value in ref.get("software", {}).items():
        mask &= ok[col].astype(str) == str(value) if col in ok else False
    for col, value in ref.get("model", {}).items():
        mask &= (ok[col].astype(str) == value) if col == "drive" else np.isclose(ok[col].astype(float), value)
    return ok[mask]


def describe(ref: dict) -> str:
    """'nest 1x1x2 on slurm-test, nest_version 3.10.0, N x0.1 K x0.1 poisson 1 s: t_sim_s'."""
    shape = "x".join(str(ref["shape"][k]) for k in SHAPE)
    model = ref.get("model", {})
    parts = [f"{ref['backend']} {shape} on {ref['machine']}", *(f"{k} {v}" for k, v in ref.get("software", {}).items())]
    size = " ".join([*(f"{'N' if k == 'n_scaling' else 'K'} x{model[k]:g}" for k in ("n_scaling", "k_scaling")
                       if k in model), *([str(model["drive"])] if "drive" in model else []),
                     *([f"{model['t_model_s']:g} s"] if "t_model_s" in model else [])])
    return ", ".join([*parts, *([size] if size else [])]) + f": {ref['metric']}"


def check_reference(ok: pd.DataFrame, ref: dict, tolerance: float, min_runs: int, resamples: int, seed: int) -> dict:
    """One reference judged: outcome, the figures and the reason."""
    tol = ref.get("tolerance", tolerance)
    runs = matching(ok, ref)
    disturbed = int(runs["_disturbed"].fillna(False).astype(bool).sum())
    counted = runs[~runs["_disturbed"].fillna(False).astype(bool)]
    values = counted[ref["metric"]].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    row = {"reference": describe(ref), "value": ref["value"], "tolerance": tol, "n_runs": len(values),
           "n_disturbed": disturbed, "median": np.nan, "change": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    left_out = f" ({disturbed} disturbed run(s) left out)" if disturbed else ""
    if len(counted) == 0:
        row["outcome"], row["reason"] = "not judged", f"no ok run matches{left_out}"
        return row
    if len(values) == 0:
        row["outcome"], row["reason"] = "not judged", f"{ref['metric']} is empty in all {len(counted)} matching run(s)"
        return row
    row["median"] = float(np.median(values))
    row["change"] = row["median"] / ref["value"] - 1
    if len(values) < min_runs:
        row["outcome"] = "not judged"
        row["reason"] = f"{len(values)} run(s){left_out}; judging needs at least {min_runs}"
        return row
    medians = Resampler(seed, _identity(ref), resamples).medians("runs", values)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    row["ci_low"], row["ci_high"] = float(low), float(high)
    limit, better = ref["value"] * (1 + tol), ref["value"] / (1 + tol)
    interval = f"median {row['median']:.4g} ({row['change']:+.1%}), 95 % interval [{low:.4g}, {high:.4g}]"
    if low > limit:
        row["outcome"] = "regressed"
        row["reason"] = f"{interval} above the limit {limit:.4g} (baseline {ref['value']:.4g} +{tol:.0%})"
    elif high < better:
        row["outcome"] = "improved"
        row["reason"] = f"{interval} below {better:.4g} (baseline {ref['value']:.4g} / (1+{tol:.0%})): update the baseline"
    else:
        row["outcome"] = "met"
        row["reason"] = f"{interval}; limit {limit:.4g}"
    row["reason"] += left_out
    return row


def check(runs: pd.DataFrame, baselines: dict, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
          ) -> pd.DataFrame:
    """One row per reference (outcome, figures, reason), runs as compare.read_runs gives them."""
    ok = prepare(runs, "campaign")
    rows = [check_reference(ok, ref, baselines["tolerance"], baselines["min_runs"], resamples, seed)
            for ref in baselines["references"]]
    return pd.DataFrame(rows, columns=["reference", "outcome", "value", "tolerance", "n_runs", "n_disturbed", "median",
                                       "change", "ci_low", "ci_high", "reason"])


def suggest(runs: pd.DataFrame, tolerance: float, metrics=("t_sim_s",)) -> dict:
    """A baseline file from a campaign: the median of every backend, software version and
    shape with at least 3 ok, undisturbed runs (to review, then commit)."""
    ok = prepare(runs, "campaign")
    ok = ok[~ok["_disturbed"].fillna(False).astype(bool)]
    refs = []
    for key, part in ok.groupby(["machine", "backend", *MODEL_COLUMNS, *SHAPE], sort=True):
        fields = dict(zip(["machine", "backend", *MODEL_COLUMNS, *SHAPE], key, strict=True))
        software = {}
        version = VERSION_OF.get(fields["backend"])
        if version in part and part[version].notna().any():
            software[version] = str(part[version].dropna().iloc[0])
        if "variant" in part and part["variant"].nunique() == 1 and not str(part["variant"].iloc[0]).startswith("("):
            software["variant"] = str(part["variant"].iloc[0])
        for metric in metrics:
            values = part[metric].dropna()
            if len(values) < 3:
                continue
            ref = {"machine": str(fields["machine"]), "backend": fields["backend"], "software": dict(software),
                   "model": {"n_scaling": float(fields["n_scaling"]), "k_scaling": float(fields["k_scaling"]),
                             "drive": str(fields["drive"]), "t_model_s": float(fields["t_model_s"])},
                   "shape": {k: int(fields[k]) for k in SHAPE}, "metric": metric,
                   "value": float(f"{values.median():.4g}")}
            refs.append(ref)
    return {"description": f"medians of campaign {', '.join(sorted(runs['campaign'].astype(str).unique()))}",
            "tolerance": tolerance, "references": refs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="docs/comparing.md#baselines")
    parser.add_argument("baseline", type=Path, nargs="?", help="config/baselines/<name>.yaml")
    parser.add_argument("campaign", type=Path, help="the campaign folder (results/<name>) or its runs.csv")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--table", type=Path, help="write the outcome per reference here (CSV)")
    parser.add_argument("--suggest", action="store_true",
                        help="print a baseline file from the campaign's medians instead of checking")
    parser.add_argument("--metric", action="append", choices=list(METRICS),
                        help="with --suggest: the figures to take (default t_sim_s; repeatable)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="with --suggest: the file's tolerance")
    args = parser.parse_args(argv)
    try:
        if args.suggest:
            runs = read_runs(args.campaign)
            print(yaml.safe_dump(suggest(runs, args.tolerance, tuple(args.metric or ["t_sim_s"])), sort_keys=False,
                                 default_flow_style=None, width=110), end="")
            return 0
        if args.baseline is None:
            parser.error("give the baseline file, or --suggest")
        baselines = load_baselines(args.baseline)
        runs = read_runs(args.campaign)
    except ConfigError as exc:
        print(f"check: the baseline file is not usable ({len(exc.problems)} problem(s)); nothing was checked:\n"
              + "\n".join(f"  - {p}" for p in exc.problems), file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2
    table = check(runs, baselines, args.resamples, args.seed)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.table, index=False, float_format="%.6g")
    if "disturbed" not in runs:
        print("disturbed: not measured (runs.csv has no 'disturbed' column): every run counts")
    for outcome in OUTCOMES:
        for row in table[table["outcome"] == outcome].itertuples():
            print(f"{outcome.upper()}: {row.reference}: {row.reason}")
    failed = table["outcome"].isin(("regressed", "not judged"))
    counts = table["outcome"].value_counts()
    print(f"{args.baseline}: {', '.join(f'{counts[o]} {o}' for o in OUTCOMES if o in counts)} "
          f"of {len(table)} reference(s) -> {'FAIL' if failed.any() else 'PASS'}")
    return 1 if failed.any() else 0


if __name__ == "__main__":
    sys.exit(main())
