"""What rule compare (workflow/rules/compare.smk) compares and where it writes, from the
checked settings (spikescale.settings: compare_with, compare_by) and the campaign: plain
functions, so that the rule file holds only the rule (docs/comparing.md)."""

from __future__ import annotations

from pathlib import Path

from spikescale.settings import WorkflowSettings


class ComparisonError(ValueError):
    """A comparison asked for that cannot be made; the message says why and what to do."""


def tag(settings: WorkflowSettings) -> str:
    """vs_<a>[+<b>...][.by_<axis>] or by_<axis>: one file name per comparison asked for."""
    by = settings.compare_by
    if settings.compare_with:
        name = "vs_" + "+".join(settings.compare_with)
        return name if by == "campaign" else f"{name}.by_{by}"
    return f"by_{by}"


def folders(settings: WorkflowSettings, results: str) -> list[str]:
    """The campaign folders compared, the reference first: the campaigns of compare_with in
    the order given, then this one (`results`); without compare_with, this one alone. Another
    campaign's runs.csv must exist: this workflow never runs another campaign."""
    others = [f"{settings.results_dir}/{name}" for name in settings.compare_with]
    for folder in others:
        if not Path(folder, "runs.csv").is_file():
            raise ComparisonError(f"compare_with: {folder}/runs.csv does not exist; run that campaign first "
                                  f"(make run EXPERIMENT=<its experiment>) or name a campaign under "
                                  f"{settings.results_dir}/")
    return [*others, results]


def reference(settings: WorkflowSettings, campaign) -> str | None:
    """The reference group when it is not the first folder: by variant within one campaign,
    the experiment's first variant."""
    if settings.compare_by == "variant" and not settings.compare_with and not campaign.single_software:
        return campaign.variants[0]
    return None


def outputs(settings: WorkflowSettings, campaign, results: str) -> list[str]:
    """The comparison's table and figure, or nothing when none was asked for."""
    if settings.compare_by is None:
        return []
    if settings.compare_by == "variant" and not settings.compare_with and campaign.single_software:
        raise ComparisonError(f"compare_by=variant: campaign {campaign.name!r} has one software variant "
                              f"({campaign.experiment['software']}); name several software files in its experiment, "
                              "or add compare_with=<campaign>")
    return [f"{results}/compare/{tag(settings)}.csv", f"{results}/compare/{tag(settings)}.png"]
