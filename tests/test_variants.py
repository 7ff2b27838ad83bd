"""Software variants as a campaign axis: an experiment may name several software files, and
each backend runs once with every variant that has an entry for it. The variant is part of a
run's id, spec, rule (so of its SLURM job array) and runs.csv row; campaigns that name one
software file keep the ids they had before variants existed."""

import hashlib
import re
from pathlib import Path

import h5py
import pandas as pd
import pytest

from helpers import edit_yaml, snakemake, write_yaml
from spikescale.config import load_campaign
from spikescale.errors import ConfigError
from spikescale.jobs import RunCommands, shape_of, shapes
from spikescale.plan import RUN_ID_TAIL, plan_runs, reference_runs, run_id_prefix

REPO = Path(__file__).resolve().parents[1]

# The ids of the shipped default campaign (its runs and its NEST reference ensemble) as the
# planner gave them before variants existed (commit 9866083): a single-software campaign
# must keep them, or every finished run would be simulated again.
DEFAULT_IDS_BEFORE_VARIANTS = (28, "nest-n1x1x1-seed1-r0-0e107b805faa",
                               "03287c7c8bcc84d49766e104dc485d319713d6017e061e2d68f5442b7d53ffac")


def two_variants(config_dir, backends=("nest", "brian2")):
    """tiny with backends nest and brian2 over the variants default (both) and nest-mpi (nest only)."""
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=list(backends), software=["default", "nest-mpi"])
    return load_campaign("tiny", config_dir)


def test_single_software_campaigns_keep_their_ids():
    campaign = load_campaign("default", REPO / "config")
    ids = [r.run_id for r in plan_runs(campaign) + reference_runs(campaign)]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    assert (len(ids), ids[0], digest) == DEFAULT_IDS_BEFORE_VARIANTS
    assert all("variant" not in r.spec() for r in plan_runs(campaign))


def test_each_backend_runs_with_every_variant_that_has_it(config_dir):
    runs = plan_runs(two_variants(config_dir))
    by = {(r.backend, r.variant) for r in runs}
    assert by == {("nest", "default"), ("nest", "nest-mpi"), ("brian2", "default")}  # nest-mpi has no brian2
    per_pair = {pair: sum((r.backend, r.variant) == pair for r in runs) for pair in by}
    assert set(per_pair.values()) == {2 * 2}  # threads 1, 2 x seeds 1, 2 each
    for run in runs:
        assert run.run_id.startswith(f"{run.backend}-{run.variant}-n1x1x{run.threads_per_task}-")
        assert run.spec()["variant"] == run.variant


def test_the_variant_is_part_of_the_id(config_dir):
    runs = plan_runs(two_variants(config_dir, backends=("nest",)))
    same_run = {}
    for run in runs:
        same_run.setdefault((run.threads_per_task, run.seed), set()).add(run.run_id)
    assert all(len(ids) == 2 for ids in same_run.values())  # the same run in two variants: two ids
    # a list of one software file is a campaign of variants too: its ids name the variant
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software=["default"])
    assert all(r.run_id.startswith("nest-default-") for r in plan_runs(load_campaign("tiny", config_dir)))


def test_runs_of_different_variants_never_share_a_rule_or_command(config_dir):
    campaign = two_variants(config_dir)
    runs = plan_runs(campaign)
    representatives = shapes(runs)
    assert len(representatives) == 3 * 2  # (nest, default), (nest, nest-mpi), (brian2, default) x 2 thread counts
    # every run id matches exactly one rule's constraint: its own backend x variant x shape
    patterns = {shape: re.compile(re.escape(run_id_prefix(*shape)) + RUN_ID_TAIL) for shape in representatives}
    for run in runs:
        assert [shape for shape, p in patterns.items() if p.fullmatch(run.run_id)] == [shape_of(run)]
    commands = RunCommands(campaign, runs, REPO)
    nest = {r.variant: r for r in runs if r.backend == "nest" and r.threads_per_task == 1 and r.seed == 1}
    assert "/.venvs/nest/bin/python" in commands.command(nest["default"], "out.h5")
    assert "/.venvs/nest-mpi/bin/python" in commands.command(nest["nest-mpi"], "out.h5")


def test_a_variant_name_cannot_capture_another_variants_runs(config_dir):
    """A variant named like the start of another's ids ('mpi-n1x1x1' after 'mpi') still
    selects only its own runs: the rules match the whole id, tail included."""
    write_yaml(config_dir / "software" / "mpi.yaml", {"nest": {"environment": {"kind": "venv", "name": "nest-mpi"}}})
    write_yaml(config_dir / "software" / "mpi-n1x1x1.yaml", {"nest": {"environment": {"kind": "venv"}}})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software=["mpi", "mpi-n1x1x1"])
    runs = plan_runs(load_campaign("tiny", config_dir))
    patterns = {shape: re.compile(re.escape(run_id_prefix(*shape)) + RUN_ID_TAIL) for shape in shapes(runs)}
    for run in runs:
        assert sum(bool(p.fullmatch(run.run_id)) for p in patterns.values()) == 1


def test_reference_ensemble_runs_on_the_first_variant_with_nest(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest", "brian2"], software=["nest-mpi", "default"],
              validation={})
    campaign = load_campaign("tiny", config_dir)
    reference = reference_runs(campaign)
    assert reference and all(r.variant == "" for r in reference)
    command = RunCommands(campaign, reference, REPO).command(reference[0], "out.h5")
    assert "/.venvs/nest-mpi/bin/python" in command
    validated = [r for r in plan_runs(campaign) if r.record_spikes]
    assert {(r.backend, r.variant) for r in validated} == {("nest", "nest-mpi"), ("nest", "default"),
                                                          ("brian2", "default")}


@pytest.mark.parametrize("software, key, allowed", [
    (["default", "nope"], "software[1]", "no file"),
    (["default", "default"], "software", "must not repeat"),
    ([], "software", "at least 1"),
    ("bad name", "software", "must match"),
    (["default", 3], "software[1]", "a string"),
])
def test_bad_variant_lists_are_refused_with_the_key(config_dir, software, key, allowed):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software=software)
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert any(p.key == key and allowed in p.allowed for p in info.value.problems), info.value.problems


def test_a_variant_that_would_run_nothing_is_refused(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["brian2"], software=["default", "nest-mpi"])
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    (problem,) = info.value.problems
    assert problem.key == "software[1]" and problem.value == "nest-mpi" and "run nothing" in problem.allowed


def test_a_backend_without_any_variant_is_refused(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest", "brian2"], software=["nest-mpi"])
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert any(p.key == "brian2" and "no software entry" in p.allowed for p in info.value.problems)


@pytest.mark.needs_nest
@pytest.mark.needs_mpi
@pytest.mark.workflow
def test_two_nest_variants_through_the_workflow(config_dir, tmp_path):
    """PyPI's NEST beside NEST built with MPI, both through Snakemake: one row each in
    runs.csv, named by variant, each run on its own build."""
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software=["default", "nest-mpi"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    results = tmp_path / "results"
    proc = snakemake(config_dir, results)
    assert "simulate_nest_nest_mpi_n1x1x1" in proc.stderr + proc.stdout
    runs = pd.read_csv(results / "tiny" / "runs.csv").set_index("variant")
    assert sorted(runs.index) == ["default", "nest-mpi"] and (runs["status"] == "ok").all()
    assert runs.loc["nest-mpi", "run_id"].startswith("nest-nest-mpi-n1x1x1-seed1-r0-")
    assert (runs["n_synapses"].nunique(), runs["nest_version"].astype(str).unique().tolist()) == (1, ["3.10.0"])
    have_mpi = {}
    for variant, run_id in runs["run_id"].items():
        with h5py.File(results / "tiny" / "runs" / f"{run_id}.h5") as f:
            have_mpi[variant] = bool(f["provenance/packages"].attrs["nest_have_mpi"])
    assert have_mpi == {"default": False, "nest-mpi": True}


@pytest.mark.needs_spinnaker
@pytest.mark.workflow
def test_single_software_campaign_names_its_file_as_variant(config_dir, tmp_path):
    """runs.csv's variant of a campaign with one software file is that file's name, though
    the run ids and specs carry none."""
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["spinnaker"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    results = tmp_path / "results"
    snakemake(config_dir, results)
    runs = pd.read_csv(results / "tiny" / "runs.csv")
    assert list(runs["variant"]) == ["default"] and runs["run_id"][0].startswith("spinnaker-n1x1x1-")
