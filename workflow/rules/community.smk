# The PD14 community's view of the campaign (docs/analysis.md#the-community-recipe): which
# points of its benchmarking recipe the campaign meets (spikescale.analysis.recipe), its
# submission-ready entry for the community table (spikescale.analysis.submission), and the
# table's published points as read from their data file (spikescale.analysis.community).

COMMUNITY_OUTPUTS = [f"{RESULTS}/analysis/recipe.csv", f"{RESULTS}/analysis/recipe.txt",
                     f"{RESULTS}/analysis/community_entry.yaml", f"{RESULTS}/analysis/community.csv"]


rule recipe:
    """Each point of the community's benchmarking recipe: met, not met or not checkable,
    with the values found and the reason."""
    input:
        runs=f"{RESULTS}/runs.csv",
        plan=f"{RESULTS}/plan.csv",
        config=f"{RESULTS}/config_resolved.json",
    output:
        table=report(f"{RESULTS}/analysis/recipe.csv", caption="../report/recipe.rst", category="Community",
                     labels={"table": "recipe check"}),
        text=f"{RESULTS}/analysis/recipe.txt",
    log:
        f"{RESULTS}/logs/recipe.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.recipe {input.runs:q} --csv {output.table:q} --txt {output.text:q}"
        " 2>&1 | tee {log:q}"


rule community_entry:
    """The campaign's entries in the community table's fields, with their caveats and the
    campaign's provenance."""
    input:
        runs=f"{RESULTS}/runs.csv",
        h5=f"{RESULTS}/campaign.h5",
        config=f"{RESULTS}/config_resolved.json",
    output:
        entry=report(f"{RESULTS}/analysis/community_entry.yaml", caption="../report/community_entry.rst",
                     category="Community", labels={"table": "community table entry"}),
    params:
        folder=lambda wildcards, input: str(Path(input.runs).parent),  # the campaign folder
    log:
        f"{RESULTS}/logs/community_entry.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.submission {params.folder:q} --out {output.entry:q} 2>&1 | tee {log:q}"


rule community_table:
    """The community's published points, from their data file (source and date in each row)."""
    output:
        table=report(f"{RESULTS}/analysis/community.csv", caption="../report/community.rst", category="Community",
                     labels={"table": "published points"}),
    log:
        f"{RESULTS}/logs/community_table.log",
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/workflow.yaml"
    shell:
        "python -m spikescale.analysis.community --out {output.table:q} 2>&1 | tee {log:q}"
