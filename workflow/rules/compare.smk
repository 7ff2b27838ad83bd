# Comparison with other campaigns, or of this campaign's variants or machines
# (docs/comparing.md). Asked for on the command line, e.g.
#   snakemake --config experiment=nest-3.10 compare_with=nest-3.9      (campaigns; the first named: the reference)
#   snakemake --config experiment=compare_versions compare_by=variant  (variants within the campaign)
# and written to results/<campaign>/compare/<tag>.{csv,png,pdf}. The data flow stays one
# way: the rule reads the campaigns' runs.csv files and nothing else; another campaign's
# runs.csv must exist already (this workflow never runs another campaign).


def compare_tag():
    """vs_<a>[+<b>...][.by_<axis>] or by_<axis>: one file name per comparison asked for."""
    by = SETTINGS.compare_by
    if SETTINGS.compare_with:
        tag = "vs_" + "+".join(SETTINGS.compare_with)
        return tag if by == "campaign" else f"{tag}.by_{by}"
    return f"by_{by}"


def compare_folders():
    """The campaign folders compared, the reference first: the campaigns of compare_with in
    the order given, then this one; without compare_with, this campaign alone."""
    others = [f"{SETTINGS.results_dir}/{name}" for name in SETTINGS.compare_with]
    for folder in others:
        if not Path(folder, "runs.csv").is_file():
            raise WorkflowError(f"compare_with: {folder}/runs.csv does not exist; run that campaign first "
                                f"(make run EXPERIMENT=<its experiment>) or name a campaign under {SETTINGS.results_dir}/")
    return [*others, RESULTS]


def compare_reference():
    """--reference of the command: by variant within one campaign, the experiment's first variant."""
    if SETTINGS.compare_by == "variant" and not SETTINGS.compare_with and not CAMPAIGN.single_software:
        return CAMPAIGN.variants[0]
    return None


def compare_outputs():
    if SETTINGS.compare_by is None:
        return []
    if SETTINGS.compare_by == "variant" and not SETTINGS.compare_with and CAMPAIGN.single_software:
        raise WorkflowError(f"compare_by=variant: campaign {CAMPAIGN.name!r} has one software variant "
                            f"({CAMPAIGN.experiment['software']}); name several software files in its experiment, "
                            "or add compare_with=<campaign>")
    return [f"{RESULTS}/compare/{compare_tag()}.csv", f"{RESULTS}/compare/{compare_tag()}.png"]


if SETTINGS.compare_by is not None:

    localrules:
        compare,

    rule compare:
        """Ratios of medians (simulation and construction time, RTF, memory, energy per
        synaptic event) with bootstrap intervals and verdicts, per backend and shape shared
        by the compared groups; their scaling curves side by side (docs/comparing.md)."""
        input:
            runs=[f"{folder}/runs.csv" for folder in compare_folders()],
        output:
            table=report(f"{RESULTS}/compare/{compare_tag()}.csv", caption="../report/compare_table.rst",
                         category="Comparison", labels={"comparison": compare_tag(), "kind": "table"}),
            png=report(f"{RESULTS}/compare/{compare_tag()}.png", caption="../report/compare.rst",
                       category="Comparison", labels={"comparison": compare_tag(), "kind": "figure"}),
            pdf=f"{RESULTS}/compare/{compare_tag()}.pdf",
        params:
            folders=compare_folders(),
            by=SETTINGS.compare_by,
            reference=f"--reference {shlex.quote(compare_reference())}" if compare_reference() else "",
        log:
            f"{RESULTS}/logs/compare_{compare_tag()}.log",
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/workflow.yaml"
        shell:
            "python -m spikescale.analysis.compare {params.folders:q} --by {params.by} {params.reference}"
            " --table {output.table:q} --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"
