"""The backend interface (spikescale.backends.base) without any simulator: every registered
backend is a Backend with declared Capabilities that match what it implements; the harness
drives backends through the interface only; and its summary keeps the figures it had."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import spikescale.harness as harness
from spikescale.backends import BACKEND_NAMES, REGISTRY, backend_class, capabilities, get_backend
from spikescale.backends.base import PLATFORMS, Backend, Capabilities
from spikescale.backends.brian2genn import Brian2GeNNBackend
from spikescale.backends.spinnaker import SpiNNakerBackend
from spikescale.backends.spinnaker_board import SpiNNakerBoard
from spikescale.backends.spinnaker_emulated import SpiNNakerEmulated
from spikescale.energy import summary as energy
from spikescale.models.pd14 import derived
from spikescale.schemas import load_schema
from spikescale.spinnaker.board import Choice

from helpers import run_spec

CLASSES = [backend_class(name) for name in BACKEND_NAMES] + [SpiNNakerBoard, SpiNNakerEmulated]


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(Backend, method)


def test_the_registry_names_every_backend_once():
    assert BACKEND_NAMES == tuple(REGISTRY) == ("nest", "brian2", "brian2genn", "genn", "spinnaker")
    for name in BACKEND_NAMES:
        assert backend_class(name).name == name
    with pytest.raises(ValueError, match="unknown backend 'neuron'; known: nest, brian2, brian2genn, genn, spinnaker"):
        backend_class("neuron")


def test_the_config_schemas_allow_the_registered_backends():
    experiment, software = load_schema("experiment"), load_schema("software")
    assert tuple(experiment["properties"]["backends"]["items"]["enum"]) == BACKEND_NAMES
    assert tuple(software["propertyNames"]["enum"]) == BACKEND_NAMES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_backend_declares_capabilities_it_implements(cls):
    assert issubclass(cls, Backend) and not getattr(cls, "__abstractmethods__", None)
    caps = cls.capabilities
    assert isinstance(caps, Capabilities) and caps.platform in PLATFORMS
    # a declared phase or platform part has its method; an undeclared one keeps the default
    assert _overrides(cls, "compile") == _overrides(cls, "load") == caps.build_phases
    assert _overrides(cls, "platform_record") == caps.platform_record
    assert _overrides(cls, "platform_energy") == (caps.platform_energy or cls is SpiNNakerBackend)


def test_what_the_backends_declare():
    assert capabilities("nest") == Capabilities(platform="cpu", emulated=False, build_phases=False, mpi=True)
    assert capabilities("brian2").platform == "cpu" and not capabilities("brian2").mpi
    assert capabilities("brian2genn").platform == "gpu" and capabilities("brian2genn").build_phases
    assert capabilities("spinnaker").platform == "spinnaker" and not capabilities("spinnaker").emulated
    assert SpiNNakerEmulated.capabilities.emulated and SpiNNakerEmulated.capabilities.platform_energy
    assert not SpiNNakerBoard.capabilities.emulated and not SpiNNakerBoard.capabilities.platform_energy
    with pytest.raises(ValueError, match="platform 'fpga'"):
        Capabilities(platform="fpga", emulated=False, build_phases=False, mpi=False)


def test_brian2genn_without_a_gpu_says_it_ran_on_the_cpu():
    backend = get_backend("brian2genn", run_spec(backend="brian2genn"))
    assert backend.capabilities_of_run().platform == "gpu"  # before setup: as declared
    backend.use_gpu = False  # what setup decides without a CUDA toolkit or a GPU
    assert backend.capabilities_of_run().platform == "cpu"
    backend.use_gpu = True
    assert backend.capabilities_of_run() == Brian2GeNNBackend.capabilities


def test_spinnaker_says_which_way_it_went_once_chosen():
    spec = run_spec(backend="spinnaker")
    backend = get_backend("spinnaker", spec)
    assert backend.capabilities_of_run() == SpiNNakerBackend.capabilities  # before the board choice
    backend.member = SpiNNakerEmulated(spec, {}, Choice("emulated", "test"))
    assert backend.capabilities_of_run().emulated
    backend.member = SpiNNakerBoard(spec, {}, Choice("hardware", "test"))
    assert not backend.capabilities_of_run().emulated


def test_every_backend_builds_the_network_the_spec_asks_for():
    spec = run_spec(weight_factor=0.5, thalamic_input=True)
    expected = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"], True, 0.5)
    assert derived.network_of(spec).weight_mean_pA == pytest.approx(expected.weight_mean_pA)
    for name in BACKEND_NAMES:
        network = get_backend(name, {**spec, "backend": name}).network
        assert network.n_synapses == expected.n_synapses
        assert (network.num_th_synapses == expected.num_th_synapses).all()


def test_the_harness_knows_no_backend():
    source = Path(harness.__file__).read_text()
    assert "hasattr" not in source
    for name in (*BACKEND_NAMES, "spynnaker", "genn"):
        assert not re.search(rf"\b{name}\b", source, re.IGNORECASE), name


def _rank(rank: int, slower: float) -> dict:
    phases = ("setup", "create", "connect", "presimulate", "simulate", "collect")
    return {"attrs": {"rank": rank},
            "phases": {name: {"attrs": {"order": i, "wall_s": (i + 1) * slower, "mem_rss_mb": 100.0 + i,
                                        "mem_peak_mb": 110.0 + i * slower}} for i, name in enumerate(phases)},
            "counts": {"attrs": {"n_neurons": 1544, "n_synapses_local": 60000 + rank, "n_connections_local": 61000,
                                 "n_virtual_processes": 1, "n_spikes_sim_counter": 100 + rank,
                                 "n_spikes": 100 + rank, "synaptic_events": 4000.0 + rank,
                                 "synaptic_events_method": "spikes (kernel counter) x mean out-degree"}}}


# The summary's keys before the phases came from spikescale.phases (and before platform and
# emulated were added): runs.csv depends on them.
SUMMARY_KEYS = {
    "n_ranks", "t_setup_s", "t_create_s", "t_connect_s", "t_compile_s", "t_load_s", "t_presim_s", "t_sim_s",
    "t_collect_s", *(f"t_{p}_s_rank_{s}" for p in ("setup", "create", "connect", "presim", "sim", "collect")
                     for s in ("min", "mean", "max")),
    "t_construct_s", "rtf", "imbalance_sim", "mem_peak_mb_max", "mem_peak_mb_rank_min", "mem_peak_mb_rank_mean",
    "mem_peak_mb_rank_max", "mem_peak_scope", "n_spikes", "synaptic_events", "n_spikes_rank_min",
    "n_spikes_rank_mean", "n_spikes_rank_max", "n_neurons", "n_synapses", "synaptic_events_method",
    "rate_mean_hz", "n_populations", "energy_sim_j", "energy_construct_j", "energy_presim_j", "esyn_uj",
    "idle_power_w", "energy_sim_net_j", "energy_kind", "energy_unavailable", "energy_source",
}


def test_summary_of_two_ranks_keeps_its_keys_and_figures():
    s = harness.summarize({"backend": "nest"}, [_rank(0, 1.0), _rank(1, 1.5)], "phase", 0.2)
    assert set(s) == SUMMARY_KEYS | {"platform", "emulated"}
    assert s["platform"] == "cpu" and s["emulated"] is False
    assert (s["t_setup_s"], s["t_setup_s_rank_min"], s["t_setup_s_rank_mean"]) == (1.5, 1.0, 1.25)
    assert s["t_compile_s"] is None and s["t_load_s"] is None  # no build phases
    assert s["t_construct_s"] == s["t_create_s"] + s["t_connect_s"] == 7.5
    assert s["t_sim_s"] == 7.5 and s["rtf"] == 37.5 and s["imbalance_sim"] == 1.2
    assert (s["n_spikes"], s["n_synapses"], s["mem_peak_mb_max"]) == (201, 120001, 117.5)


def test_summary_says_where_the_run_ran_and_copies_the_platforms_figures():
    runs_on = SpiNNakerEmulated.capabilities
    s = harness.summarize({"backend": "spinnaker"}, [_rank(0, 1.0)], "phase", 0.2, runs_on=runs_on,
                          platform_summary={"platform_mode": "emulated", "rtf_modelled": 1.0})
    assert (s["platform"], s["emulated"], s["platform_mode"], s["rtf_modelled"]) == ("spinnaker", True, "emulated", 1.0)
    # a run of an unknown backend failed before it had one: nothing to say where it ran
    assert harness.summarize({"backend": "neuron"}, [{"attrs": {"rank": 0}}], "phase", 0.2)["platform"] == ""


def test_energy_columns_sum_the_phases_they_always_summed():
    assert energy.PHASES == {"energy_construct_j": ("create", "connect"), "energy_presim_j": ("presimulate",),
                             "energy_sim_j": ("simulate",)}


def test_cuda_toolkit_behind_an_nvcc_wrapper_is_found(tmp_path, monkeypatch):
    """nvcc on PATH may be a wrapper script outside the toolkit (this machine's
    /usr/local/bin/nvcc is one): the toolkit is the one its dry run names, not the folder
    above the wrapper."""
    from spikescale.backends.brian2genn import cuda_path

    toolkit = tmp_path / "cuda-13.0"
    (toolkit / "include").mkdir(parents=True)
    (toolkit / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    wrapper = tmp_path / "bin" / "nvcc"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\necho '#$ TOP={toolkit}' >&2\n")
    wrapper.chmod(0o755)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", str(wrapper.parent))
    assert cuda_path() == str(toolkit.resolve())
    (toolkit / "include" / "cuda.h").unlink()  # a dry run naming no toolkit: none, not a guess
    assert cuda_path() is None
    monkeypatch.setenv("CUDA_PATH", "/opt/cuda")
    assert cuda_path() == "/opt/cuda"
