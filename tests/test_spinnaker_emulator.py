"""The SpiNNaker emulator's arithmetic (spikescale/spinnaker/emulator.py) against what the
board's C code computes, rule by rule, on networks small enough to follow by hand; and the
board choice (spikescale/spinnaker/board.py) against a board that answers and one that
does not. No sPyNNaker needed here: test_spinnaker.py runs the real toolchain."""

from __future__ import annotations

import math
import socket
import threading

import numpy as np
import pytest

from spikescale.schemas import complete
from spikescale.spinnaker import board
from spikescale.spinnaker.emulator import ONE, Constants, Drive, Emulator, Projection, to_s1615

LIF = dict(dt_ms=0.1, tau_m_ms=10.0, cm_nF=0.25, tau_syn_ms=0.5, tau_refrac_ms=2.0, v_rest_mV=-65.0,
           v_reset_mV=-65.0, v_thresh_mV=-50.0)


def constants() -> Constants:
    return Constants.for_lif(**LIF)


def emulator(n, *, v_init_mV=-65.0, i_offset_nA=0.0, synapses=(), shift=5, drives=(), record=True, max_delay=16):
    """n neurons; synapses as (source, target, weight_nA (negative: inhibitory), delay_steps)."""
    s = np.array(synapses, dtype=float).reshape(-1, 4)
    shifts = np.full((n, 2), shift, dtype=np.int64)
    rec = Projection.build(n, n, s[:, 0].astype(int), s[:, 1].astype(int), s[:, 2], s[:, 3].astype(int), shifts)
    return Emulator(constants(), v_init_mV=np.full(n, v_init_mV, dtype=float),
                    i_offset_nA=np.broadcast_to(np.asarray(i_offset_nA, dtype=float), (n,)).copy(), recurrent=rec,
                    shifts=shifts, drives=list(drives), max_delay_steps=max_delay, seed=1, record_spikes=record)


def test_constants_are_derived_from_the_s1615_parameters_as_the_core_does():
    c = constants()
    ts = 3277  # 0.1 ms in s16.15 is 3277 / 2^15 = 0.100006 ms
    assert to_s1615(0.1) == ts
    assert c.r_membrane == 40 * ONE  # 10 ms / 0.25 nF = 40 MOhm, exact
    assert c.exp_tc == math.floor(math.exp(-((ts << 15) // (10 * ONE)) / ONE) * ONE)
    assert c.exp_tc / ONE == pytest.approx(math.exp(-0.01), abs=2 / ONE)
    # 2 ms / 0.100006 ms = 19.9994 steps, rounded up by lif_ceil_accum: 20
    assert c.t_refract_steps == 20
    assert c.syn_decay / 2**32 == pytest.approx(math.exp(-0.2), abs=1e-4)
    # init = tau/dt (1 - decay): a weight enters the current scaled by 0.906
    assert c.syn_init / 2**32 == pytest.approx(5 * (1 - math.exp(-0.2)), abs=1e-4)
    assert c.v_thresh == -50 * ONE and c.v_rest == -65 * ONE


def test_membrane_follows_the_closed_form_update_in_fixed_point():
    e = emulator(1, i_offset_nA=0.3)  # 0.3 nA x 40 MOhm = 12 mV: below threshold
    c = e.c
    v = to_s1615(-65.0)
    for _ in range(200):
        i_total = to_s1615(0.3)
        alpha = ((i_total * c.r_membrane) >> 15) + c.v_rest
        v = alpha - ((c.exp_tc * (alpha - v)) >> 15)
        e.advance(1)
        assert e.v[0] == v  # bit for bit, both products floored
    # and close to the exact solution of the ODE: -65 + 12 (1 - exp(-t/tau))
    assert e.v[0] / ONE == pytest.approx(-65 + 12 * (1 - math.exp(-200 * 0.1 / 10)), abs=0.01)


def test_spike_threshold_reset_and_refractory_period():
    e = emulator(1, i_offset_nA=0.5)  # 20 mV above rest: fires regularly
    trace = []
    for _ in range(600):
        e.advance(1)
        trace.append(int(e.v[0]))
    ids, steps = e.spikes()
    assert ids.size >= 2
    first = int(steps[0])
    # V >= threshold in the step of the spike, then reset and held for 20 steps exactly
    assert all(v == e.c.v_reset for v in trace[first:first + 21])
    assert trace[first + 21] > e.c.v_reset
    # the interval: refractory steps plus the time to climb 15 of 20 mV again
    climb = math.ceil(-10 * math.log(1 - 15 / 20) / 0.1)
    assert int(steps[1] - steps[0]) == pytest.approx(20 + climb, abs=2)


def test_a_spike_arrives_after_its_delay_scaled_by_init():
    # neuron 0 fires at once (starts above threshold); neuron 1 gets 0.1 nA after 7 steps
    e = emulator(2, v_init_mV=[-49.0, -65.0], synapses=[(0, 1, 0.1, 7)])
    units = int(np.rint(0.1 * 2 ** (15 - 5)))  # the weight as the mapping stores it (shift 5)
    seen = []
    for _ in range(12):
        e.advance(1)
        seen.append(int(e.i_syn[0, 1]))
    assert e.spikes()[1][0] == 0  # neuron 0 spiked in step 0
    arrival = ((units << 5) * e.c.syn_init) >> 32
    # the current of step 7 enters before that step's update; it then decays after it
    assert seen[:7] == [0] * 7
    assert seen[7] == (arrival * e.c.syn_decay) >> 32
    assert seen[8] == (seen[7] * e.c.syn_decay) >> 32


def test_inhibitory_weights_are_subtracted():
    e = emulator(2, v_init_mV=[-49.0, -65.0], synapses=[(0, 1, -0.5, 1)])
    e.advance(3)
    assert e.i_syn[1, 1] > 0 and e.i_syn[0, 1] == 0  # stored as a positive inhibitory current
    assert e.v[1] < to_s1615(-65.0)  # and pulls V down


def test_weights_are_rounded_to_the_units_of_the_mappings_shift():
    shifts = np.array([[3, 6], [4, 4]])
    p = Projection.build(2, 2, [0, 0, 1], [0, 0, 1], [0.123456, -0.5, 0.2], [1, 1, 1], shifts)
    assert list(p.weight_units) == [int(np.rint(0.123456 * 2**12)), int(np.rint(0.5 * 2**9)),
                                    int(np.rint(0.2 * 2**11))]
    assert list(p.slot_rest) == [0, 2 + 0, 1]  # excitatory onto 0, inhibitory onto 0, excitatory onto 1


def test_a_full_ring_buffer_slot_saturates_and_is_counted():
    # 40 neurons fire at once onto neuron 40 with 2 nA each: 80 nA at shift 5 needs
    # 80 x 2^10 = 81,920 units, more than a 16-bit slot holds
    n = 41
    v0 = np.r_[np.full(40, -49.0), -65.0]
    e = emulator(n, v_init_mV=v0, synapses=[(k, 40, 2.0, 2) for k in range(40)])
    e.advance(3)
    assert e.saturated_slots == 1
    arrival = ((0xFFFF << 5) * e.c.syn_init) >> 32  # the slot's largest value, not 81,920
    assert e.i_syn[0, 40] == (arrival * e.c.syn_decay) >> 32  # entered in step 2, decayed after it


def test_delays_beyond_the_mappings_cap_are_refused():
    with pytest.raises(ValueError, match="delays must lie in 1..16 steps"):
        emulator(2, synapses=[(0, 1, 0.1, 17)], max_delay=16)


def test_background_drive_is_a_poisson_count_per_step():
    n = 2000
    shifts = np.full((n, 2), 5, dtype=np.int64)
    bg = Projection.build(n, n, np.arange(n), np.arange(n), np.full(n, 0.05), np.full(n, 15), shifts)
    rate_per_step = np.full(n, 1.6)  # 16 kHz of background at dt 0.1 ms
    e = Emulator(constants(), v_init_mV=np.full(n, -80.0), i_offset_nA=np.zeros(n),
                 recurrent=Projection.build(n, n, [], [], [], [], shifts), shifts=shifts,
                 drives=[Drive(rate_per_step=rate_per_step, projection=bg, one_to_one=True)], max_delay_steps=16,
                 seed=3, record_spikes=False)
    e.advance(100)
    counts = e.source_spikes[0]
    assert counts.mean() == pytest.approx(160, rel=0.02)
    assert counts.var() == pytest.approx(160, rel=0.15)  # Poisson: variance = mean
    assert (e.source_packets[0] <= 100).all() and e.source_packets[0].mean() == pytest.approx(
        100 * (1 - math.exp(-1.6)), rel=0.02)  # one packet per step with at least one spike


# --- board choice -------------------------------------------------------------------------

def _free_udp_port_answering(result: int = 0x80):
    """A UDP socket on 127.0.0.1 that answers every datagram with the given SCP result
    (0x80, RC_OK: a board's SCAMP stands in)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(512)
                reply = bytearray(data)
                reply[10:12] = result.to_bytes(2, "little")
                sock.sendto(bytes(reply), addr)
            except OSError:
                continue

    threading.Thread(target=serve, daemon=True).start()
    return sock, stop


def test_emulate_never_contacts_a_board():
    choice = board.choose({"fallback": "emulate", "machine_name": "192.0.2.1"})
    assert choice.mode == "emulated" and "fallback: emulate" in choice.reason


def test_prefer_hardware_falls_back_with_the_reason(monkeypatch):
    monkeypatch.setattr(board, "SCAMP_PORT", 9)  # nothing answers on the discard port
    choice = board.choose({"fallback": "prefer_hardware", "machine_name": "127.0.0.1"}, timeout_s=0.5)
    assert choice.mode == "emulated"
    assert "no SpiNNaker board answered at 127.0.0.1" in choice.reason and "prefer_hardware" in choice.reason


def test_require_hardware_fails_with_what_to_do(monkeypatch):
    monkeypatch.setattr(board, "SCAMP_PORT", 9)
    with pytest.raises(RuntimeError, match="require_hardware.*no SpiNNaker board answered at 127.0.0.1"):
        board.choose({"fallback": "require_hardware", "machine_name": "127.0.0.1"}, timeout_s=0.5)
    with pytest.raises(RuntimeError, match="spalloc server http://127.0.0.1:9 did not answer"):
        board.choose({"fallback": "require_hardware", "spalloc_server": "http://127.0.0.1:9"}, timeout_s=0.5)


def test_a_board_that_answers_is_used(monkeypatch):
    sock, stop = _free_udp_port_answering()
    try:
        monkeypatch.setattr(board, "SCAMP_PORT", sock.getsockname()[1])
        choice = board.choose({"fallback": "prefer_hardware", "machine_name": "127.0.0.1"}, timeout_s=2.0)
    finally:
        stop.set()
    assert choice == board.Choice("hardware", "board 127.0.0.1 answered")


def test_something_else_answering_is_not_taken_for_a_board(monkeypatch):
    sock, stop = _free_udp_port_answering(result=0)  # an echo: the request's own command word
    try:
        monkeypatch.setattr(board, "SCAMP_PORT", sock.getsockname()[1])
        choice = board.choose({"fallback": "prefer_hardware", "machine_name": "127.0.0.1"}, timeout_s=2.0)
    finally:
        stop.set()
    assert choice.mode == "emulated"
    assert "not as a SpiNNaker board's SCAMP does: SCP result 0x0000, expected 0x0080" in choice.reason


def test_the_run_configuration_names_the_board_or_the_virtual_board(tmp_path):
    text = board.config_text({"machine_name": "spinn-4.example.org", "version": 5, "time_scale_factor": 2},
                             "hardware", tmp_path)
    assert "machineName = spinn-4.example.org" in text and "virtual_board" not in text
    assert "time_scale_factor = 2" in text and "write_energy_report = True" in text
    defaults = complete("machine", {})["spinnaker"]
    text = board.config_text({**defaults, "machine_name": "spinn-4.example.org"}, "emulated", tmp_path)
    assert "virtual_board = True" in text and "machineName" not in text
    assert f"default_report_file_path = {tmp_path / 'reports'}" in text
