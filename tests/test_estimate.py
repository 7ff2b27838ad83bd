"""The memory and walltime estimate that refuses runs a machine cannot hold, before any job."""

from __future__ import annotations

import re

import pytest
from helpers import edit_yaml
from spikescale import estimate, estimate_table
from spikescale.backends import BACKEND_NAMES
from spikescale.config import load_campaign
from spikescale.errors import ConfigError


def problems_of(config_dir, experiment="full_scale_local"):
    with pytest.raises(ConfigError) as info:
        load_campaign(experiment, config_dir)
    return info.value.problems


def megabytes_in(text: str) -> list[int]:
    return [int(m.replace(",", "")) for m in re.findall(r"([\d,]+) MB", text)]


def test_full_scale_nest_refused_on_an_8_gb_machine_with_the_figures(config_dir):
    edit_yaml(config_dir / "machine" / "local-oversubscribed.yaml", memory_per_node_mb=8000)
    [problem] = problems_of(config_dir)
    assert problem.file.endswith("experiment/full_scale_local.yaml") and problem.key == "axes"
    assert problem.value == {"nodes": 1, "tasks_per_node": 1, "threads_per_task": 4}
    text = problem.allowed
    assert "on nest" in text and "local-oversubscribed.yaml" in text and "has 8,000 MB (memory_per_node_mb)" in text
    needed = megabytes_in(text)[0]
    # 298,880,968 synapses at 48 B each plus one process: about what the full-scale run used
    assert 14_000 < needed < 16_500
    assert "298,880,968 synapses" in text and "the advisor's memory model" in text


def test_full_scale_nest_accepted_at_24_gb(config_dir):
    campaign = load_campaign("full_scale_local", config_dir)
    assert campaign.machine["memory_per_node_mb"] == 24000


def test_a_time_limit_too_short_for_the_run_is_refused(config_dir):
    edit_yaml(config_dir / "machine" / "local-oversubscribed.yaml", walltime_max_min=3)
    [problem] = problems_of(config_dir)
    assert "walltime_max_min = 3" in problem.allowed and "min (" in problem.allowed
    minutes = int(re.search(r"takes about ([\d,]+) min", problem.allowed).group(1).replace(",", ""))
    assert 3 < minutes < 60


def test_a_machine_with_faster_cores_says_so_and_its_limit_is_judged_by_them(config_dir):
    edit_yaml(config_dir / "machine" / "local-oversubscribed.yaml", walltime_max_min=3)
    assert problems_of(config_dir)
    edit_yaml(config_dir / "machine" / "local-oversubscribed.yaml", walltime_max_min=3, core_speed_relative=10)
    load_campaign("full_scale_local", config_dir)
    edit_yaml(config_dir / "machine" / "local-oversubscribed.yaml", core_speed_relative=0)
    [problem] = problems_of(config_dir)
    assert problem.key == "core_speed_relative" and problem.value == 0


@pytest.mark.parametrize("backend", ["brian2", "spinnaker"])
def test_full_scale_on_other_backends_is_refused_here_by_memory_or_time(config_dir, backend):
    edit_yaml(config_dir / "experiment" / "full_scale_local.yaml", backends=[backend],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    problems = problems_of(config_dir)
    assert problems and all(f"on {backend}" in p.allowed for p in problems)
    assert any("needs about" in p.allowed or "takes about" in p.allowed for p in problems)


def test_the_estimate_grows_with_the_model_and_divides_over_nodes():
    run = {"backend": "nest", "n_scaling": 0.1, "k_scaling": 0.1, "drive": "poisson", "thalamic_input": False,
           "t_presim_ms": 500.0, "t_sim_ms": 1000.0, "dt_ms": 0.1, "nodes": 1, "tasks_per_node": 1,
           "threads_per_task": 1}
    small, _ = estimate.memory_per_node_mb(run)
    big, _ = estimate.memory_per_node_mb(run | {"n_scaling": 0.2, "k_scaling": 0.2})
    two_nodes, _ = estimate.memory_per_node_mb(run | {"n_scaling": 0.2, "k_scaling": 0.2, "nodes": 2})
    assert small < two_nodes < big
    t1, _ = estimate.walltime_s(run, {"cores_per_node": 2})
    t2, _ = estimate.walltime_s(run | {"threads_per_task": 2}, {"cores_per_node": 2})
    t_more_threads_than_cores, _ = estimate.walltime_s(run | {"threads_per_task": 8}, {"cores_per_node": 2})
    assert t2 < t1 and t_more_threads_than_cores == t2


def test_a_gpu_run_and_an_uncalibrated_backend_get_a_reason_not_a_figure():
    run = {"backend": "genn", "n_scaling": 1.0, "k_scaling": 1.0, "drive": "dc", "thalamic_input": False,
           "t_presim_ms": 500.0, "t_sim_ms": 10000.0, "dt_ms": 0.1, "nodes": 1, "tasks_per_node": 1,
           "threads_per_task": 1}
    est = estimate.estimate_run(run, {"cores_per_node": 2}, {"pygenn": {"backend": "cuda"}})
    assert est.mem_mb_per_node is None and "GPU" in est.mem_basis
    assert est.walltime_s is None and "GPU" in est.time_basis
    est = estimate.estimate_run(run | {"backend": "brian2genn"}, {"cores_per_node": 2}, {})
    assert est.mem_mb_per_node is None and "not calibrated" in est.mem_basis


def test_every_backend_has_a_model_or_says_why_not():
    for backend in BACKEND_NAMES:
        assert backend in estimate.MEMORY_MODELS or backend in estimate.MEMORY_UNKNOWN, backend
        assert backend in estimate.TIME_MODELS or backend in estimate.TIME_UNKNOWN, backend


def test_the_command_prints_each_shape_beside_the_machine_limits(capsys):
    assert estimate_table.main(["--experiment", "full_scale_local"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("nest"))
    assert "1x1x4" in row and "15,109" in row and "24,000" in row and "120" in row
    assert "memory from the advisor's memory model" in out and "make advisor-check" in out


def test_the_estimate_is_the_advisors_memory_model_per_rank_times_the_ranks_of_a_node():
    """One memory model: the estimate before submission evaluates the advisor's form
    (spikescale.perf_model.MEMORY_TERMS) with its shipped constants, per rank, times the ranks
    of the busiest node; the synapses and neurons spread over all ranks."""
    from spikescale.perf_model import ESTIMATE_MEMORY, MEMORY_TERMS, evaluate, planned_configuration

    run = {"backend": "nest", "n_scaling": 0.5, "k_scaling": 0.5, "drive": "poisson", "thalamic_input": False,
           "t_presim_ms": 500.0, "t_sim_ms": 1000.0, "dt_ms": 0.1, "nodes": 2, "tasks_per_node": 4,
           "threads_per_task": 3}
    mem, basis = estimate.memory_per_node_mb(run)
    config = planned_configuration("nest", 0.5, 0.5, "poisson", 0.1, 2, 4, 3)
    per_rank = evaluate(MEMORY_TERMS, ESTIMATE_MEMORY["nest"]["constants"], config)
    assert mem == pytest.approx(4 * per_rank)
    constants = ESTIMATE_MEMORY["nest"]["constants"]
    by_hand = (constants["mb_base"] + constants["mb_per_neuron"] * config.n_neurons / 8
               + constants["mb_per_synapse"] * config.n_synapses / 8 + constants["mb_per_rank"] * 7
               + constants["mb_per_thread"] * 2)
    assert per_rank == pytest.approx(by_hand)
    assert "8 rank(s)" in basis and "make advisor-check" in basis
