# The configuration advisor (docs/advisor.md): performance and memory models fitted to this
# campaign's runs (and those of the campaigns its experiment's advisor.fit_also names),
# predictions with intervals at a model size and shapes not run, and advice. The data flow
# stays one way: the rule reads collected runs.csv files and nothing else.
from spikescale.advisor_inputs import fit_folders

try:
    ADVISOR_FOLDERS = fit_folders(CAMPAIGN, SETTINGS.results_dir, RESULTS)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

ADVISOR_OUTPUTS = [f"{RESULTS}/analysis/advisor.csv", f"{RESULTS}/analysis/advisor.txt",
                   f"{RESULTS}/analysis/advisor.png"]


rule advisor:
    """Fitted terms with intervals, predicted RTF, construction time, peak memory per node
    and (where energy was measured) energy per synaptic event for every candidate shape of
    the target size; the fastest and the most energy-efficient configuration; where
    communication would dominate; the next most informative measurement."""
    input:
        runs=[f"{folder}/runs.csv" for folder in ADVISOR_FOLDERS],
        config=f"{RESULTS}/config_resolved.json",
    output:
        table=report(f"{RESULTS}/analysis/advisor.csv", caption="../report/advisor_table.rst", category="Advisor",
                     labels={"figure": "advisor", "kind": "predictions"}),
        terms=report(f"{RESULTS}/analysis/advisor_terms.csv", caption="../report/advisor_terms.rst",
                     category="Advisor", labels={"figure": "advisor", "kind": "fitted terms"}),
        curve=f"{RESULTS}/analysis/advisor_curve.csv",
        text=report(f"{RESULTS}/analysis/advisor.txt", caption="../report/advisor_text.rst", category="Advisor",
                    labels={"figure": "advisor", "kind": "advice"}),
        png=report(f"{RESULTS}/analysis/advisor.png", caption="../report/advisor.rst", category="Advisor",
                   labels={"figure": "advisor", "kind": "figure"}),
        pdf=f"{RESULTS}/analysis/advisor.pdf",
    params:
        folders=ADVISOR_FOLDERS,
    log:
        f"{RESULTS}/logs/advisor.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.advise {params.folders:q} --table {output.table:q} --terms {output.terms:q}"
        " --curve {output.curve:q} --text {output.text:q} --png {output.png:q} --pdf {output.pdf:q} 2>&1 | tee {log:q}"
