"""Peak memory of a rank's process and of the programs it starts (spikescale.memory)."""

from __future__ import annotations

import subprocess
import sys
import time

from spikescale import memory

HOLD_200_MB = "import sys, time; b = bytearray(200_000_000); b[::4096] = b'x' * len(b[::4096]); " \
              "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)"


def _start(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_child_programs_peak_is_counted_and_a_helper_left_out():
    base = memory.children_peak_mb()
    program = _start(HOLD_200_MB)
    helper = _start(HOLD_200_MB)
    try:
        both = memory.children_peak_mb()
        without_helper = memory.children_peak_mb({helper.pid})
        assert both - base > 390
        assert 195 < without_helper - base < 260
    finally:
        for p in (program, helper):
            p.kill()
            p.wait()
    time.sleep(0.05)
    assert memory.children_peak_mb() == base  # ended programs are not seen


def test_resetting_a_childs_peak_brings_it_down_to_what_it_holds_now():
    code = ("import sys, time; b = bytearray(300_000_000); b[::4096] = b'x' * len(b[::4096]); del b; "
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)")
    program = _start(code)
    try:
        before = memory.children_peak_mb()
        memory.reset_children_peak()
        after = memory.children_peak_mb()
        assert before > 290 and after < before - 250
    finally:
        program.kill()
        program.wait()
