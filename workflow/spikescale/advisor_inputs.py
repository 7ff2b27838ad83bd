"""What rule advisor (workflow/rules/advisor.smk) reads: this campaign's runs and those of the
campaigns its experiment's ``advisor.fit_also`` names (docs/advisor.md). A plain function, so
the rule file holds only the rule; a named campaign that has not been collected is refused
before anything runs (this workflow never runs another campaign)."""

from __future__ import annotations

from pathlib import Path

from spikescale.errors import ConfigError, ConfigProblem


def fit_folders(campaign, results_dir: str | Path, results: str) -> list[str]:
    """This campaign's folder (``results``) first, then each campaign of advisor.fit_also."""
    names = campaign.experiment.get("advisor", {}).get("fit_also", [])
    problems = []
    for i, name in enumerate(names):
        if name == campaign.name:
            problems.append(ConfigProblem(campaign.files["experiment"], f"advisor.fit_also[{i}]", name,
                                          "names this campaign itself; its runs are fitted anyway"))
        elif not Path(results_dir, name, "runs.csv").is_file():
            problems.append(ConfigProblem(campaign.files["experiment"], f"advisor.fit_also[{i}]", name,
                                          f"{Path(results_dir, name, 'runs.csv')} does not exist: a campaign collected "
                                          f"under {results_dir}/ (run it first: make run EXPERIMENT={name})"))
    if problems:
        raise ConfigError(problems)
    return [results, *(f"{Path(results_dir, name)}" for name in names)]
