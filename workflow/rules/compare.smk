# Comparison with other campaigns, or of this campaign's variants, machines or backends
# (docs/comparing.md). Asked for on the command line, e.g.
#   snakemake --config experiment=nest-3.10 compare_with=nest-3.9      (campaigns; the first named: the reference)
#   snakemake --config experiment=compare_versions compare_by=variant  (variants within the campaign)
# and written to results/<campaign>/compare/<tag>.{csv,png,pdf} (spikescale.comparison). The
# data flow stays one way: the rule reads the campaigns' runs.csv files and nothing else.
from spikescale import comparison

try:
    COMPARE_OUTPUTS = comparison.outputs(SETTINGS, CAMPAIGN, RESULTS)  # rule all asks for them
    COMPARE_FOLDERS = comparison.folders(SETTINGS, RESULTS) if COMPARE_OUTPUTS else []
except comparison.ComparisonError as exc:
    raise WorkflowError(str(exc)) from None
COMPARE_TAG = comparison.tag(SETTINGS) if COMPARE_OUTPUTS else None
COMPARE_REFERENCE = comparison.reference(SETTINGS, CAMPAIGN)


if COMPARE_OUTPUTS:

    localrules:
        compare,

    rule compare:
        """Ratios of medians (simulation and construction time, RTF, memory, energy per
        synaptic event) with bootstrap intervals and verdicts, per backend and shape shared
        by the compared groups; their scaling curves side by side (docs/comparing.md)."""
        input:
            runs=[f"{folder}/runs.csv" for folder in COMPARE_FOLDERS],
        output:
            table=report(f"{RESULTS}/compare/{COMPARE_TAG}.csv", caption="../report/compare_table.rst",
                         category="Comparison", labels={"comparison": COMPARE_TAG, "kind": "table"}),
            png=report(f"{RESULTS}/compare/{COMPARE_TAG}.png", caption="../report/compare.rst",
                       category="Comparison", labels={"comparison": COMPARE_TAG, "kind": "figure"}),
            pdf=f"{RESULTS}/compare/{COMPARE_TAG}.pdf",
        params:
            folders=COMPARE_FOLDERS,
            by=SETTINGS.compare_by,
            reference=f"--reference {shlex.quote(COMPARE_REFERENCE)}" if COMPARE_REFERENCE else "",
        log:
            f"{RESULTS}/logs/compare_{COMPARE_TAG}.log",
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/workflow.yaml"
        shell:
            "python -m spikescale.analysis.compare {params.folders:q} --by {params.by} {params.reference}"
            " --table {output.table:q} --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"
