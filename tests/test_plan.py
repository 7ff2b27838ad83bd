"""Planning: stable ids, additive seeds, weak-scaling growth."""

import yaml

from helpers import edit_yaml, write_yaml
from spikescale.config import load_campaign
from spikescale.plan import canonical, make_run_id, plan_runs, write_plan_csv


def ids(config_dir):
    return [r.run_id for r in plan_runs(load_campaign("tiny", config_dir))]


def test_one_run_per_shape_seed_and_repetition(config_dir):
    runs = plan_runs(load_campaign("tiny", config_dir))
    assert len(runs) == 2 * 2  # threads 1, 2 x seeds 1, 2
    assert {(r.threads_per_task, r.seed) for r in runs} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(r.campaign == "tiny" and r.backend == "nest" for r in runs)


def test_same_config_same_ids(config_dir):
    assert ids(config_dir) == ids(config_dir)


def test_ids_do_not_depend_on_yaml_spelling(config_dir):
    before = ids(config_dir)
    text = (config_dir / "model" / "tiny.yaml").read_text().replace("n_scaling: 0.02", "n_scaling: 2.0e-02")
    (config_dir / "model" / "tiny.yaml").write_text(text)
    assert ids(config_dir) == before


def test_adding_a_seed_only_adds_runs(config_dir):
    before = set(ids(config_dir))
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1, 2, 3])
    after = set(ids(config_dir))
    assert before < after and len(after - before) == 2


def test_adding_repetitions_and_threads_only_adds_runs(config_dir):
    before = set(ids(config_dir))
    edit_yaml(config_dir / "experiment" / "tiny.yaml", repetitions=2)
    assert before < set(ids(config_dir))


def test_changing_the_model_changes_every_id(config_dir):
    before = set(ids(config_dir))
    edit_yaml(config_dir / "model" / "tiny.yaml", t_sim_ms=300.0)
    assert before.isdisjoint(ids(config_dir))


def test_id_is_readable_and_hash_of_canonical_params():
    params = {"backend": "nest", "nodes": 1, "tasks_per_node": 1, "threads_per_task": 2, "seed": 7,
              "repetition": 0, "n_scaling": 0.1}
    run_id = make_run_id(params)
    assert run_id.startswith("nest-n1x1x2-seed7-r0-")
    assert make_run_id(dict(reversed(list(params.items())))) == run_id
    assert canonical({"a": 0.1}) == canonical({"a": 0.10})
    assert make_run_id({**params, "n_scaling": 0.2}) != run_id


def test_weak_scaling_grows_the_model(config_dir):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp.update(scaling="weak", weak_scaling={"n_scaling_per_unit": 0.01, "unit": "virtual_process"})
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    runs = plan_runs(load_campaign("tiny", config_dir))
    assert {(r.threads_per_task, r.n_scaling) for r in runs} == {(1, 0.01), (2, 0.02)}
    assert all(r.k_scaling == 0.02 for r in runs)


def test_plan_csv_has_one_row_per_run(config_dir, tmp_path):
    runs = plan_runs(load_campaign("tiny", config_dir))
    write_plan_csv(runs, tmp_path / "plan.csv")
    lines = (tmp_path / "plan.csv").read_text().splitlines()
    assert lines[0].startswith("run_id,campaign,backend")
    assert len(lines) == 1 + len(runs)
