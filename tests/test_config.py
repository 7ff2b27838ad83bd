"""Every kind of bad configuration gets one clear error naming file, key, value and what
is allowed, and nothing runs (checked through snakemake at the end)."""

from pathlib import Path

import pytest
import yaml

from helpers import edit_yaml, snakemake, write_yaml
from spikescale.config import load_campaign
from spikescale.errors import ConfigError


def problems_of(config_dir, experiment="tiny"):
    with pytest.raises(ConfigError) as info:
        load_campaign(experiment, config_dir)
    return info.value.problems


def one_problem(config_dir, experiment="tiny"):
    problems = problems_of(config_dir, experiment)
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_tiny_campaign_loads_with_defaults(config_dir):
    c = load_campaign("tiny", config_dir)
    assert c.name == "tiny"
    assert c.machine["nodes_max"] == 1  # default filled in
    assert c.files["model"].endswith("model/tiny.yaml")


def test_shipped_configurations_are_valid():
    root = Path(__file__).resolve().parents[1] / "config"
    for path in sorted((root / "experiment").glob("*.yaml")):
        load_campaign(path.stem, root)


def test_unknown_key_names_it_and_lists_allowed(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", n_scalling=0.5)
    p = one_problem(config_dir)
    assert p.file.endswith("model/tiny.yaml") and p.key == "n_scalling" and p.value == 0.5
    assert "unknown key" in p.allowed and "n_scaling" in p.allowed


def test_wrong_type(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", t_sim_ms="long")
    p = one_problem(config_dir)
    assert (p.key, p.value) == ("t_sim_ms", "long") and "a number" in p.allowed
    assert "t_sim_ms = 'long'" in str(ConfigError([p]))


@pytest.mark.parametrize("key", ["nodes", "tasks_per_node", "threads_per_task"])
def test_counts_below_one(config_dir, key):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp["axes"][key] = [0]
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    p = one_problem(config_dir)
    assert p.key == f"axes.{key}[0]" and p.value == 0 and p.allowed == "must be >= 1"


def test_repetitions_below_one(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", repetitions=0)
    p = one_problem(config_dir)
    assert (p.key, p.value, p.allowed) == ("repetitions", 0, "must be >= 1")


@pytest.mark.parametrize("key,value,allowed", [("n_scaling", 0, "must be > 0"), ("n_scaling", 1.5, "must be <= 1"),
                                               ("k_scaling", -0.1, "must be > 0"), ("k_scaling", 2, "must be <= 1")])
def test_scales_outside_zero_one(config_dir, key, value, allowed):
    edit_yaml(config_dir / "model" / "tiny.yaml", **{key: value})
    p = one_problem(config_dir)
    assert (p.key, p.value, p.allowed) == (key, value, allowed)


def test_empty_axis(config_dir):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp["axes"]["threads_per_task"] = []
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    p = one_problem(config_dir)
    assert p.key == "axes.threads_per_task" and p.value == [] and "at least 1" in p.allowed


def test_empty_seeds(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[])
    p = one_problem(config_dir)
    assert p.key == "seeds" and "at least 1" in p.allowed


def test_unknown_backend(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest", "neuron"])
    p = one_problem(config_dir)
    assert p.key == "backends[1]" and p.value == "neuron" and "'nest'" in p.allowed


def test_unknown_drive(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", drive="ac")
    p = one_problem(config_dir)
    assert p.value == "ac" and "'poisson'" in p.allowed and "'dc'" in p.allowed


def test_more_threads_than_cores(config_dir):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp["axes"]["threads_per_task"] = [1, 4]
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    p = one_problem(config_dir)
    assert p.key == "axes.threads_per_task[1]" and p.value == 4
    assert "cores_per_node = 2" in p.allowed and "machine/local.yaml" in p.allowed


def test_oversubscription_can_be_allowed(config_dir):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp["axes"]["threads_per_task"] = [4]
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    edit_yaml(config_dir / "machine" / "local.yaml", allow_oversubscription=True)
    assert load_campaign("tiny", config_dir).experiment["axes"]["threads_per_task"] == [4]


def test_more_nodes_than_machine(config_dir):
    exp = yaml.safe_load((config_dir / "experiment" / "tiny.yaml").read_text())
    exp["axes"]["nodes"] = [1, 2]
    write_yaml(config_dir / "experiment" / "tiny.yaml", exp)
    problems = problems_of(config_dir)
    node_problem = [p for p in problems if p.key == "axes.nodes[1]"]
    assert node_problem and "nodes_max = 1" in node_problem[0].allowed


def test_more_memory_than_machine(config_dir):
    edit_yaml(config_dir / "machine" / "local.yaml", memory_per_node_mb=1000)
    edit_yaml(config_dir / "model" / "tiny.yaml", n_scaling=0.5, k_scaling=0.5)
    problems = problems_of(config_dir)
    assert any("needs about" in p.allowed and "1,000 MB" in p.allowed for p in problems)


def test_full_scale_nest_with_two_virtual_processes_is_refused(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", n_scaling=1.0, k_scaling=1.0, drive="dc")
    edit_yaml(config_dir / "experiment" / "tiny.yaml",
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [2]})
    p = one_problem(config_dir)
    assert p.key == "axes" and p.value == {"nodes": 1, "tasks_per_node": 1, "threads_per_task": 2}
    assert "134,217,726" in p.allowed and ">= 3 virtual processes" in p.allowed


def test_full_scale_with_four_threads_is_accepted_when_oversubscribed(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", n_scaling=1.0, k_scaling=1.0, drive="dc")
    edit_yaml(config_dir / "experiment" / "tiny.yaml",
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [4]})
    edit_yaml(config_dir / "machine" / "local.yaml", allow_oversubscription=True)
    load_campaign("tiny", config_dir)


def test_missing_part_file_lists_available(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="jureca")
    p = one_problem(config_dir)
    assert p.key == "machine" and p.value == "jureca" and "local" in p.allowed


def test_missing_experiment(config_dir):
    p = one_problem(config_dir, experiment="nonexistent")
    assert p.key == "experiment" and "tiny" in p.allowed


def test_yaml_tags_are_refused(config_dir):
    (config_dir / "model" / "tiny.yaml").write_text("model: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    p = one_problem(config_dir)
    assert p.file.endswith("model/tiny.yaml") and "tags and aliases are refused" in p.allowed
    assert not Path("/tmp/pwned").exists()


def test_bytes_that_are_not_utf8(config_dir):
    (config_dir / "model" / "tiny.yaml").write_bytes(b"model: pd14\ndrive: \xff\xfe\n")
    p = one_problem(config_dir)
    assert "not valid UTF-8" in p.allowed


def test_missing_software_entry_for_backend(config_dir):
    (config_dir / "software" / "empty.yaml").write_text("{}\n")
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software="empty")
    p = one_problem(config_dir)
    assert p.file.endswith("software/empty.yaml") and "at least 1" in p.allowed


def test_software_kind_needs_its_field(config_dir):
    write_yaml(config_dir / "software" / "default.yaml", {"nest": {"environment": {"kind": "modules"}}})
    p = one_problem(config_dir)
    assert p.key == "nest.environment.modules" and "required" in p.allowed


def test_shell_characters_refused_in_module_names(config_dir):
    write_yaml(config_dir / "software" / "default.yaml",
               {"nest": {"environment": {"kind": "modules", "modules": ["NEST/3.10; rm -rf ~"]}}})
    p = one_problem(config_dir)
    assert p.key == "nest.environment.modules[0]" and "no spaces or shell characters" in p.allowed


def test_multi_rank_without_mpi_launcher(config_dir):
    edit_yaml(config_dir / "machine" / "local.yaml", cores_per_node=4)
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software="nest-mpi",
              axes={"nodes": [1], "tasks_per_node": [2], "threads_per_task": [1]})
    p = one_problem(config_dir)
    assert p.key == "axes.tasks_per_node[0]" and "MPI launcher" in p.allowed


def test_brian2_with_several_ranks_is_refused(config_dir):
    edit_yaml(config_dir / "machine" / "local-mpi.yaml", cores_per_node=4)
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software="default", machine="local-mpi",
              backends=["brian2"], axes={"nodes": [1], "tasks_per_node": [2], "threads_per_task": [1]})
    p = one_problem(config_dir)
    assert p.key == "backends" and "no MPI" in p.allowed


def test_spinnaker_with_several_ranks_is_refused(config_dir):
    edit_yaml(config_dir / "machine" / "local-mpi.yaml", cores_per_node=4)
    edit_yaml(config_dir / "experiment" / "tiny.yaml", software="default", machine="local-mpi",
              backends=["spinnaker"], axes={"nodes": [1], "tasks_per_node": [2], "threads_per_task": [1]})
    p = one_problem(config_dir)
    assert p.key == "backends" and p.value == "spinnaker" and "one host process" in p.allowed


def test_spinnaker_hardware_needs_a_board_or_server(config_dir):
    edit_yaml(config_dir / "machine" / "local.yaml", spinnaker={"fallback": "prefer_hardware"})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["spinnaker"])
    p = one_problem(config_dir)
    assert p.file.endswith("machine/local.yaml") and p.key == "spinnaker.fallback"
    assert p.value == "prefer_hardware" and "machine_name" in p.allowed and "fallback: emulate" in p.allowed


@pytest.mark.parametrize("key, value", [("machine_name", "spinn-4; rm -rf ~"), ("fallback", "sometimes"),
                                        ("time_scale_factor", 0), ("neurons_per_core", 1000)])
def test_spinnaker_settings_are_checked(config_dir, key, value):
    edit_yaml(config_dir / "machine" / "local.yaml", spinnaker={"fallback": "emulate", key: value})
    p = one_problem(config_dir)
    assert p.file.endswith("machine/local.yaml") and p.key == f"spinnaker.{key}"


def test_weak_scaling_needs_its_rule(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", scaling="weak")
    p = one_problem(config_dir)
    assert p.key == "weak_scaling" and "required" in p.allowed


def test_weak_scaling_beyond_full_scale(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", scaling="weak",
              weak_scaling={"n_scaling_per_unit": 0.6, "unit": "virtual_process"})
    p = one_problem(config_dir)
    assert p.key == "weak_scaling.n_scaling_per_unit" and "n_scaling = 1.2" in p.allowed


def test_all_problems_reported_together(config_dir):
    edit_yaml(config_dir / "experiment" / "tiny.yaml", repetitions=0, bogus=True)
    edit_yaml(config_dir / "model" / "tiny.yaml", dt_ms="x")
    keys = {p.key for p in problems_of(config_dir)}
    assert {"repetitions", "bogus", "dt_ms"} <= keys


def test_presim_not_a_whole_number_of_steps(config_dir):
    edit_yaml(config_dir / "model" / "tiny.yaml", t_presim_ms=100.05)
    p = one_problem(config_dir)
    assert p.key == "t_presim_ms" and "whole number of steps" in p.allowed


def test_snakemake_refuses_bad_config_before_running_anything(config_dir, tmp_path):
    edit_yaml(config_dir / "model" / "tiny.yaml", n_scaling=1.5)
    results = tmp_path / "results"
    proc = snakemake(config_dir, results, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "model/tiny.yaml: n_scaling = 1.5: must be <= 1" in output
    assert "nothing was run" in output
    assert not results.exists()


def test_shipped_machine_files_are_valid():
    from spikescale.config import _schema_problems, load_schema, machine_problems, read_yaml

    root = Path(__file__).resolve().parents[1] / "config" / "machine"
    schema = load_schema("machine")
    for path in sorted(root.glob("*.yaml")):
        data, problems = read_yaml(path, str(path), "machine")
        assert not problems and not _schema_problems(data, schema, str(path)), path
        assert not machine_problems({"nodes_max": 1, **data}, str(path)), path


def test_schema_defaults_are_applied_at_every_depth(config_dir):
    """Every default lives in a schema, applied at load at every depth; the code repeats none."""
    from spikescale.schemas import complete

    campaign = load_campaign("tiny", config_dir)
    # nested sections absent from the shipped machine file come back with their defaults
    assert campaign.machine["energy"] == {"rapl": True, "nvml": True, "sampling_hz": 10, "idle_measurement_s": 0}
    assert campaign.machine["spinnaker"]["fallback"] == "emulate"
    assert campaign.machine["spinnaker"]["neurons_per_core"] == 64
    # a value that is given wins over the default beside it, which is still filled in
    partial = complete("machine", {"energy": {"sampling_hz": 2}, "mpi": {"launcher": "srun"}})
    assert partial["energy"]["sampling_hz"] == 2 and partial["energy"]["rapl"] is True
    assert partial["mpi"] == {"launcher": "srun", "srun_mpi": "pmix"}
    # an experiment's validation section ({} = all defaults) is filled in too
    edit_yaml(config_dir / "experiment" / "tiny.yaml", validation={})
    validation = load_campaign("tiny", config_dir).experiment["validation"]
    assert validation["reference_seeds"] == list(range(1001, 1011)) and validation["max_outside"] == 1


def test_no_default_is_repeated_in_code():
    """The schemas' nested defaults are not written again in the modules that use them."""
    from helpers import REPO

    repeated = []
    for path in (REPO / "workflow" / "spikescale").rglob("*.py"):
        text = path.read_text()
        for pattern in ('get("fallback", "emulate")', "DEFAULTS = {", "get('version', 5)", 'get("sampling_hz"'):
            if pattern in text:
                repeated.append(f"{path.name}: {pattern}")
    assert repeated == []


@pytest.mark.parametrize("given, shown", [
    ({"experiment": None}, "nothing (the key is empty)"),  # --config experiment=
    ({"experiment": " "}, "' '"),
    ({"experiment": ["a", "b"]}, "['a', 'b']"),
    ({"experiment": 1.5}, "1.5"),
    ({"experiment": True}, "True"),
    ({"experiment": "default", "config_dir": 7}, "'7'"),
    ({"experiment": "default", "results_dir": ""}, "''"),
    ({"experiment": "default", "result_dir": "x"}, "'x'"),
])
def test_command_line_values_are_checked_before_use(given, shown):
    """--config and --configfile values arrive as YAML: each is checked, none ends in a traceback."""
    from helpers import REPO
    from spikescale.settings import SOURCE, workflow_settings

    with pytest.raises(ConfigError) as info:
        workflow_settings(given, REPO)
    text = str(info.value)
    assert SOURCE in text and shown in text, text


def test_command_line_numbers_that_are_names_are_taken_as_names():
    from helpers import REPO
    from spikescale.settings import workflow_settings

    settings = workflow_settings({"experiment": 2024}, REPO)  # snakemake --config experiment=2024
    assert settings.experiment == "2024" and settings.config_dir == REPO / "config"
    with pytest.raises(ConfigError):
        workflow_settings(["experiment"], REPO)  # a --configfile holding a list


@pytest.mark.parametrize("value", ["", "2024", "null", "[a]"])
def test_snakemake_refuses_bad_command_line_values_without_a_traceback(config_dir, tmp_path, value):
    proc = snakemake(config_dir, tmp_path / "results", "-n", experiment=value, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert "experiment" in out, out[-3000:]


@pytest.mark.parametrize("make", ["link to /dev/zero", "fifo", "folder"])
def test_special_files_are_refused_as_configuration(config_dir, make):
    """A link to /dev/zero has size 0 and never ends; a FIFO would hang an open(): both are
    refused before any byte is read, naming the file."""
    import os

    target = config_dir / "model" / "tiny.yaml"
    target.unlink()
    if make == "link to /dev/zero":
        target.symlink_to("/dev/zero")
    elif make == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    (problem,) = info.value.problems
    assert problem.file == str(target) and problem.key == "(file)", problem
    assert "regular file" in problem.allowed or "cannot be read" in problem.allowed, problem


def test_configuration_files_are_read_with_a_bound(config_dir):
    target = config_dir / "model" / "tiny.yaml"
    target.write_text("description: x\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert "at most 1,048,576 bytes" in str(info.value)


def test_messages_say_why_a_value_that_looks_right_is_refused(config_dir):
    """1e12 is text to YAML 1.1; a Cyrillic 'е' in a backend's name looks Latin; a key given
    twice is not a matter of tags or aliases."""
    (config_dir / "model" / "tiny.yaml").write_text(
        (config_dir / "model" / "tiny.yaml").read_text().replace("t_sim_ms: 200.0", "t_sim_ms: 1e12"))
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert "YAML reads 1e12 as text" in str(info.value) and "1.0e+12" in str(info.value)

    edit_yaml(config_dir / "model" / "tiny.yaml", t_sim_ms=200.0)
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["n\u0435st"])
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert "U+0435 CYRILLIC SMALL LETTER IE" in str(info.value)

    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest"])
    path = config_dir / "model" / "tiny.yaml"
    path.write_text(path.read_text() + "n_scaling: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    assert "appears twice" in str(info.value) and "each key once" in str(info.value)
    assert "aliases" not in str(info.value)


# -- GPUs (docs/running.md#gpus) ---------------------------------------------------------------

def gpu_campaign(config_dir, gpus_per_node=0, **machine):
    """tiny with brian2genn (one process) on a SLURM machine, its software entry saying gpu: true."""
    software = yaml.safe_load((config_dir / "software" / "default.yaml").read_text())
    software["brian2genn"]["gpu"] = True
    write_yaml(config_dir / "software" / "default.yaml", software)
    write_yaml(config_dir / "machine" / "gpu-cluster.yaml", {
        "name": "gpu-cluster", "executor": "slurm", "cores_per_node": 8, "memory_per_node_mb": 64000,
        "gpus_per_node": gpus_per_node, **machine})
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="gpu-cluster", backends=["nest", "brian2genn"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})


def test_a_gpu_run_on_a_machine_without_gpus_is_refused(config_dir):
    gpu_campaign(config_dir)
    p = one_problem(config_dir)
    assert p.file.endswith("machine/gpu-cluster.yaml") and (p.key, p.value) == ("gpus_per_node", 0)
    assert "brian2genn in" in p.allowed and "has gpu: true" in p.allowed and "has no GPUs" in p.allowed
    gpu_campaign(config_dir, gpus_per_node=4, gpu_type="a100")
    assert load_campaign("tiny", config_dir).machine["gpus_per_node"] == 4


def test_gpu_only_for_gpu_backends_and_gpu_type_only_with_gpus(config_dir):
    software = yaml.safe_load((config_dir / "software" / "default.yaml").read_text())
    software["nest"]["gpu"] = True
    write_yaml(config_dir / "software" / "default.yaml", software)
    edit_yaml(config_dir / "machine" / "local.yaml", gpu_type="a100")
    problems = {p.key: p for p in problems_of(config_dir)}
    assert set(problems) == {"nest.gpu", "gpu_type"}
    assert problems["nest.gpu"].file.endswith("software/default.yaml")
    assert "only brian2genn and genn run on GPUs" in problems["nest.gpu"].allowed
    assert problems["gpu_type"].value == "a100" and "set gpus_per_node" in problems["gpu_type"].allowed
    # a type name goes onto sbatch's command line: SLURM's and the executor plugin's letters only
    edit_yaml(config_dir / "machine" / "local.yaml", gpu_type="a100;id", gpus_per_node=1)
    assert any(p.key == "gpu_type" and p.value == "a100;id" for p in problems_of(config_dir))


def test_genn_on_cuda_on_slurm_must_ask_for_its_gpus(config_dir):
    """A genn entry with backend cuda but without gpu: true would ask SLURM for no GPU and
    fail on the compute node: refused at planning, naming the entry."""
    write_yaml(config_dir / "machine" / "gpu-cluster.yaml", {
        "name": "gpu-cluster", "executor": "slurm", "cores_per_node": 8, "memory_per_node_mb": 64000,
        "gpus_per_node": 1})
    software = yaml.safe_load((config_dir / "software" / "default.yaml").read_text())
    software["genn"]["pygenn"] = {"backend": "cuda"}
    write_yaml(config_dir / "software" / "default.yaml", software)
    edit_yaml(config_dir / "experiment" / "tiny.yaml", machine="gpu-cluster", backends=["genn"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    p = one_problem(config_dir)
    assert p.file.endswith("software/default.yaml") and (p.key, p.value) == ("genn.pygenn.backend", "cuda")
    assert "gpu: true" in p.allowed
    software["genn"]["gpu"] = True
    write_yaml(config_dir / "software" / "default.yaml", software)
    assert load_campaign("tiny", config_dir).entry("genn", "default")["gpu"] is True


@pytest.mark.parametrize("option", ["--gres=gpu:1", "--gpus=2", "--gpus-per-node=1", "--gpus-per-task=1",
                                    "--ntasks-per-gpu=1", "--cpus-per-gpu=4", "--gre=gpu:1"])
def test_gpu_requests_in_extra_sbatch_are_refused(config_dir, option):
    """GPUs are asked for from gpus_per_node only: a second request in extra_sbatch would
    differ from what the run checks it got (sbatch reads --gre as --gres)."""
    gpu_campaign(config_dir, gpus_per_node=1, slurm={"extra_sbatch": ["--hint=nomultithread", option]})
    p = one_problem(config_dir)
    assert p.key == "slurm.extra_sbatch[1]" and p.value == option
    assert "is set by the workflow" in p.allowed and "gpus_per_node" in p.allowed
