"""The workflow's own settings: which campaign, where its configuration is, where results go.

They come from config/config.yaml, a --configfile or --config key=value on Snakemake's
command line, which Snakemake parses as YAML: `experiment=2024` arrives as a number and
`experiment=` as nothing at all. Each is checked here, before anything else reads it, and a
bad one is refused with where it came from, the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from spikescale.errors import ConfigError, ConfigProblem

SOURCE = "config/config.yaml, --configfile or --config"
KEYS = ("experiment", "config_dir", "results_dir", "compare_with", "compare_by")
# compare_with names campaigns (results/<name>/) and compare_by an axis of spikescale.analysis.compare
CAMPAIGN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
COMPARE_AXES = ("campaign", "variant", "machine", "backend")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PATH_CHARS = 1000


@dataclass(frozen=True)
class WorkflowSettings:
    experiment: str  # a name in <config_dir>/experiment/ or a path to a .yaml file
    config_dir: Path
    results_dir: str
    compare_with: tuple[str, ...] = ()  # campaigns this one is compared with (the first: the reference)
    compare_by: str | None = None  # campaign, variant or machine; None: no comparison asked for


def _text(config: dict, key: str, default: str | None, what: str, problems: list) -> str | None:
    value = config.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `experiment=2024` on the command line: YAML made it a number
    if not isinstance(value, str) or not value.strip():
        shown = "nothing (the key is empty)" if value is None else value
        problems.append(ConfigProblem(SOURCE, key, shown, f"must be {what}; e.g. --config {key}=<value>"))
        return None
    if value != value.strip() or _CONTROL.search(value) or len(value) > MAX_PATH_CHARS:
        problems.append(ConfigProblem(SOURCE, key, value, f"must be {what}, without surrounding spaces or control "
                                      f"characters, at most {MAX_PATH_CHARS} characters"))
        return None
    return value


def workflow_settings(config, repo_root: Path) -> WorkflowSettings:
    """The checked settings of one Snakemake invocation; ConfigError naming every problem."""
    if not isinstance(config, dict):
        raise ConfigError([ConfigProblem(SOURCE, "(top level)", type(config).__name__,
                                         "must be a mapping of " + ", ".join(KEYS))])
    problems: list[ConfigProblem] = []
    for key in sorted(k for k in config if k not in KEYS):
        problems.append(ConfigProblem(SOURCE, str(key), config[key], "unknown key; allowed keys: " + ", ".join(KEYS)))
    experiment = _text(config, "experiment", None, "the name of a file in <config_dir>/experiment/ (without .yaml) "
                       "or a path to a .yaml file", problems)
    config_dir = _text(config, "config_dir", str(repo_root / "config"), "a folder with experiment/, model/, machine/ "
                       "and software/", problems)
    results_dir = _text(config, "results_dir", "results", "a folder for the results", problems)
    compare_with, compare_by = _compare(config, problems)
    if config_dir is not None and not Path(config_dir).is_dir():
        problems.append(ConfigProblem(SOURCE, "config_dir", config_dir, "no such folder"))
    if problems:
        raise ConfigError(problems)
    return WorkflowSettings(experiment=experiment, config_dir=Path(config_dir), results_dir=results_dir,
                            compare_with=compare_with, compare_by=compare_by)


def _compare(config: dict, problems: list) -> tuple[tuple[str, ...], str | None]:
    """compare_with: a campaign name or a list of them (`compare_with=old` or
    `compare_with=[a,b]`); compare_by: one of COMPARE_AXES, campaign by default when
    compare_with is given (docs/comparing.md)."""
    raw = config.get("compare_with")
    names = [] if raw is None else raw if isinstance(raw, list) else [raw]
    names = [str(n) if isinstance(n, int) and not isinstance(n, bool) else n for n in names]
    bad = [n for n in names if not isinstance(n, str) or not CAMPAIGN_NAME.match(n)]
    if bad or ("compare_with" in config and not names):
        problems.append(ConfigProblem(SOURCE, "compare_with", raw, "must be a campaign name (a folder of "
                                      "results_dir: letters, digits, '_', '.', '-') or a list of them, e.g. "
                                      "--config compare_with=nest-3.9 or compare_with=[a,b]"))
    by = config.get("compare_by", "campaign" if names else None)
    if "compare_by" in config and by not in COMPARE_AXES:
        problems.append(ConfigProblem(SOURCE, "compare_by", by, "allowed: " + ", ".join(COMPARE_AXES)))
        by = None
    elif by == "campaign" and not names:
        problems.append(ConfigProblem(SOURCE, "compare_by", by, "comparing campaigns needs compare_with=<campaign>"))
    return tuple(dict.fromkeys(names)), by
