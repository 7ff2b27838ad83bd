"""The spinnaker backend with the real toolchain: sPyNNaker 7.4.1 maps PD14 onto its virtual
board (real partitioning, placement and routing), the emulator simulates it, and the record,
runs.csv and the figures say that the run was emulated and which figures are modelled. The
hardware path is exercised up to where a board must answer: a fake SCAMP on 127.0.0.1
answers the probe, and sPyNNaker's first contact fails with a clear error.

The validation of an emulated run against NEST's reference ensemble at scale 0.1 is part of
test_workflow.py's validation test (it shares the ensemble)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import threading

import numpy as np
import pandas as pd
import pytest

from helpers import REPO, edit_yaml, run_spec, snakemake
from spikescale import columns
from spikescale.models.pd14 import connectivity, derived
from spikescale.models.pd14 import params as P
from spikescale.record import read_record

pytestmark = pytest.mark.needs_spinnaker

SPINNAKER_PYTHON = REPO / ".venvs" / "spinnaker" / "bin" / "python"
EMULATE = {"machine": {"name": "local", "spinnaker": {"fallback": "emulate"}},
           "software": {"versions": {"sPyNNaker": "1!7.4.1"}}}


@pytest.fixture(scope="module")
def spinnaker_python():
    """The sPyNNaker environment; its tests are marked needs_spinnaker, which conftest checks first."""
    return SPINNAKER_PYTHON


def _harness(spec, out, context, **env):
    cmd = [str(SPINNAKER_PYTHON), "-m", "spikescale.harness", "--spec", json.dumps(spec),
           "--context", json.dumps(context), "--out", str(out)]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def emulated(spinnaker_python, tmp_path_factory):
    """A tiny PD14 (scale 0.02) recorded, emulated, with a user's own sPyNNaker configuration
    in HOME and in XDG_CONFIG_HOME that the run must neither read nor change."""
    tmp = tmp_path_factory.mktemp("spinnaker")
    home, xdg = tmp / "home", tmp / "xdg"
    home.mkdir()
    xdg.mkdir()
    user_cfgs = [home / ".spynnaker.cfg", xdg / ".spynnaker.cfg"]
    for cfg in user_cfgs:  # two user configurations would stop sPyNNaker (TwoUserConfigsException)
        cfg.write_text("[Machine]\nmachineName = 192.0.2.1\nversion = 5\n")
    before = {cfg: hashlib.sha256(cfg.read_bytes()).hexdigest() for cfg in user_cfgs}
    spec = run_spec(backend="spinnaker", record_spikes=True, seed=1)
    proc = _harness(spec, tmp / "run.h5", EMULATE, HOME=str(home), XDG_CONFIG_HOME=str(xdg), TMPDIR=str(tmp))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {cfg: hashlib.sha256(cfg.read_bytes()).hexdigest() for cfg in user_cfgs}
    return spec, read_record(tmp / "run.h5"), before, after, tmp


def test_emulated_run_records_every_phase_and_says_it_is_emulated(emulated):
    spec, rec, _, _, _ = emulated
    assert rec["attrs"]["status"] == "ok", rec["attrs"]["error"]
    phases = rec["ranks"]["0"]["phases"]
    assert sorted(phases, key=lambda p: phases[p]["attrs"]["order"]) == \
        ["setup", "create", "connect", "compile", "load", "presimulate", "simulate", "collect"]
    s = rec["summary"]["attrs"]
    assert s["emulated"] and s["platform"] == "spinnaker" and s["platform_mode"] == "emulated"
    # every runs.csv column that spikescale.columns says an emulated SpiNNaker fills is in the summary
    declared = set(columns.filled_by("spinnaker", emulated=True))
    assert declared <= set(s), declared - set(s)
    assert "fallback: emulate" in s["platform_reason"]
    assert rec["provenance"]["packages"]["attrs"]["sPyNNaker"] == "1!7.4.1"
    cfg = rec["ranks"]["0"]["platform"]["attrs"]["spynnaker_cfg"]
    assert "virtual_board = True" in cfg and "192.0.2.1" not in cfg


def test_the_users_own_spynnaker_configuration_is_left_alone(emulated):
    _, _, before, after, tmp = emulated
    assert before == after
    assert not list(tmp.glob("spikescale-spinnaker-*")), "the run directory is removed at exit"


def test_mapping_figures_come_from_spynnakers_virtual_board(emulated):
    spec, rec, _, _, _ = emulated
    s = rec["summary"]["attrs"]
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    cores = rec["ranks"]["0"]["platform"]["cores"]
    kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in cores["kind"]]
    # 64 neurons per neuron core: every population split into ceil(n / 64) cores, each with
    # its synapse core (sPyNNaker 7 splits neurons and synapses), one Poisson core each
    expected_neuron_cores = int(sum(np.ceil(net.num_neurons / 64)))
    assert s["spinnaker_neuron_cores"] == kinds.count("neurons") == expected_neuron_cores
    assert s["spinnaker_synapse_cores"] == expected_neuron_cores
    assert s["spinnaker_source_cores"] == kinds.count("poisson_source") >= 8
    assert s["spinnaker_neurons_per_core_max"] == 64
    assert 1 <= s["spinnaker_chips_used"] <= s["spinnaker_machine_chips"] == 48
    assert s["spinnaker_routing_entries"] > 0 and s["spinnaker_boards"] == 1
    # sPyNNaker's own stage timers of the virtual run
    assert s["spynnaker_mapping_s"] > 0
    shifts = rec["ranks"]["0"]["platform"]["ring_buffer_shifts"]
    assert shifts.shape == (8, 2) and (shifts >= 0).all()


def test_modelled_time_and_energy_are_labelled(emulated):
    spec, rec, _, _, _ = emulated
    s = rec["summary"]["attrs"]
    assert s["t_sim_modelled_s"] == pytest.approx(spec["t_sim_ms"] / 1000)  # time_scale_factor 1: real time
    assert s["rtf_modelled"] == pytest.approx(1.0)
    assert s["t_load_modelled_s"] > 0 and s["spinnaker_realtime_plausible"]
    # recorded spikes come back as a bit field per neuron core and step (a time word and a bit
    # per neuron, in 32-bit words), at the assumed 10 MB/s
    cores = rec["ranks"]["0"]["platform"]["cores"]
    neuron = np.array([k in ("neurons", b"neurons") for k in cores["kind"]])
    atoms = (cores["hi_atom"] - cores["lo_atom"] + 1)[neuron]
    steps = (spec["t_presim_ms"] + spec["t_sim_ms"]) / spec["dt_ms"]
    bytes_per_step = int(np.sum(4 + 4 * np.ceil(atoms / 32)))
    assert s["t_extract_modelled_s"] == pytest.approx(steps * bytes_per_step / 10e6)
    assert s["energy_kind"] == "modelled" and s["energy_source"].startswith("modelled: SpiNNFrontEndCommon")
    meter = rec["ranks"]["0"]["energy"]["meters"]["spinnaker-model-board"]["attrs"]
    assert meter["covers"] == "platform" and meter["packets_simulate"] > 0
    # at least the idle board (26.84 W for a 48-chip board) for the modelled 0.2 s
    assert s["energy_sim_j"] >= 26.84 * s["t_sim_modelled_s"]
    assert s["esyn_uj"] == pytest.approx(s["energy_sim_j"] / s["synaptic_events"] * 1e6)


def test_spikes_are_laid_out_as_nest_lays_them_out(emulated):
    spec, rec, _, _, _ = emulated
    net = derived.derive(spec["n_scaling"], spec["k_scaling"], spec["drive"])
    rank = rec["ranks"]["0"]
    first = list(rank["population_first_ids"])
    assert first == [1 + int(o) for o in connectivity.population_offsets(net)]
    for p, pop in enumerate(P.POPULATIONS):
        senders, times = rank["spikes"][pop]["senders"], rank["spikes"][pop]["times_ms"]
        assert ((senders >= first[p]) & (senders < first[p] + net.num_neurons[p])).all()
        steps = times / spec["dt_ms"]
        assert np.allclose(steps, np.round(steps)) and (times > 0).all()  # stamped at the end of a step
    s = rec["summary"]["attrs"]
    assert rank["counts"]["attrs"]["n_spikes_sim_counter"] == s["n_spikes"] > 0
    assert 0.2 < s["rate_mean_hz"] < 5  # NEST gives about 0.8 spikes/s at this scale


class FakeSCAMP:
    """Answers every SCP request on 127.0.0.1, port 17893, with RC_OK: enough for the board
    probe, not for sPyNNaker, which then fails on its first real request."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", 17893))
        except OSError as exc:
            pytest.fail(f"port 17893 (SCAMP) is taken on this machine: {exc}")
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(1024)
            except OSError:
                continue
            reply = bytearray(data)
            reply[10:12] = (0x80).to_bytes(2, "little")
            self.sock.sendto(bytes(reply), addr)

    def close(self):
        self.stop.set()
        self.sock.close()


def test_hardware_path_runs_up_to_the_board_and_fails_clearly(spinnaker_python, tmp_path):
    spec = run_spec(backend="spinnaker", t_presim_ms=10.0, t_sim_ms=20.0)
    context = {"machine": {"name": "local", "spinnaker": {"fallback": "require_hardware",
                                                          "machine_name": "127.0.0.1"}}}
    scamp = FakeSCAMP()
    try:
        proc = _harness(spec, tmp_path / "run.h5", context, TMPDIR=str(tmp_path))
    finally:
        scamp.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = read_record(tmp_path / "run.h5")
    a = rec["attrs"]
    assert a["status"] == "failed" and a["failed_phase"] == "presimulate"
    assert a["error"].startswith("RuntimeError: sPyNNaker could not run on the SpiNNaker hardware at 127.0.0.1 "
                                 "(board 127.0.0.1 answered)"), a["error"]
    assert "spinnaker.fallback to emulate" in a["error"]

    # with nothing answering, require_hardware stops in setup and says what to do
    proc = _harness(spec, tmp_path / "none.h5", context, TMPDIR=str(tmp_path))
    record = read_record(tmp_path / "none.h5")
    a = record["attrs"]
    assert a["status"] == "failed" and a["failed_phase"] == "setup"
    assert "require_hardware, but no SpiNNaker board answered at 127.0.0.1" in a["error"]
    # refused at the board choice, which comes after the allocation check and the energy meters
    assert "allocation" in record and "energy" in record["ranks"]["0"]
    assert record["summary"]["attrs"]["platform"] == "spinnaker" and not record["summary"]["attrs"]["emulated"]


@pytest.mark.needs_nest
@pytest.mark.workflow
@pytest.mark.slow
def test_campaign_with_spinnaker_marks_it_emulated_everywhere(spinnaker_python, nest_python, config_dir, tmp_path):
    results = tmp_path / "results"
    edit_yaml(config_dir / "experiment" / "tiny.yaml", backends=["nest", "spinnaker"],
              axes={"nodes": [1], "tasks_per_node": [1], "threads_per_task": [1]})
    edit_yaml(config_dir / "model" / "tiny.yaml", seeds=[1])
    snakemake(config_dir, results)
    out = results / "tiny"
    runs = pd.read_csv(out / "runs.csv").set_index("backend")
    assert (runs["status"] == "ok").all()
    assert bool(runs.loc["spinnaker", "emulated"]) and not bool(runs.loc["nest", "emulated"])
    assert runs.loc["spinnaker", "platform"] == "spinnaker" and runs.loc["spinnaker", "platform_mode"] == "emulated"
    assert runs.loc["spinnaker", "spinnaker_cores_used"] > 0 and runs.loc["spinnaker", "rtf_modelled"] == 1.0
    assert runs.loc["spinnaker", "energy_kind"] == "modelled" and runs.loc["spinnaker", "spynnaker_version"] == "1!7.4.1"
    strong = pd.read_csv(out / "analysis" / "strong_scaling.csv")
    assert set(strong["backend"]) == {"nest", "spinnaker (emulated)"}
    rtf = pd.read_csv(out / "analysis" / "rtf_energy.csv").set_index("backend")
    assert bool(rtf.loc["spinnaker", "emulated"]) and rtf.loc["spinnaker", "rtf_kind"] == "modelled"
    assert rtf.loc["spinnaker", "rtf_mean"] == 1.0 and rtf.loc["nest", "rtf_kind"] == "measured"
    assert rtf.loc["spinnaker", "energy_kind"] == "modelled"
