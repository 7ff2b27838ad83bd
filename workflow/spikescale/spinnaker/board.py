"""Where a SpiNNaker run goes (a board, or the emulation) and the sPyNNaker configuration it
runs with.

Fallback policy (machine config, ``spinnaker.fallback``):
- ``require_hardware``: a board or spalloc server must answer, or the run fails and says why;
- ``prefer_hardware``: use the board when it answers, else emulate, and record why;
- ``emulate``: never contact a board.
The choice and its reason go into the run's record (``platform_mode``, ``platform_reason``).

sPyNNaker insists on exactly one user configuration file (~/.spynnaker.cfg or one under the
XDG config directories) and writes a template into the home directory when it finds none. A
run never relies on, nor touches, the user's: it points HOME and the XDG directories at its
own run directory, where it writes the configuration it needs (``write_config``).
"""

from __future__ import annotations

import os
import socket
import struct
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

FALLBACKS = ("require_hardware", "prefer_hardware", "emulate")
SCAMP_PORT = 17893  # a board's SCP port (SpiNNMan: SCP_SCAMP_PORT)
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Choice:
    mode: str  # "hardware" or "emulated"
    reason: str


SCP_RESULT_OK = 0x80  # SpiNNMan's SCPResult.RC_OK


def _scamp_answers(host: str, timeout_s: float) -> str | None:
    """None when the board at `host` answers an SCP CMD_VER to chip (0, 0) as SCAMP does
    (result RC_OK); otherwise why not. The packet is SpiNNMan's GetVersion request: two
    padding bytes, the SDP header to the monitor core, then command 0 with sequence 1."""
    sdp = struct.pack("<2xBBBBHHBB", 0x87, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF)  # flags, tag, ports, addresses
    scp = struct.pack("<HHIII", 0, 1, 0, 0, 0)  # CMD_VER, sequence 1, no arguments
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout_s)
            s.sendto(sdp + scp, (host, SCAMP_PORT))
            reply, _ = s.recvfrom(512)
    except (OSError, socket.timeout) as exc:
        return f"no SpiNNaker board answered at {host} (SCP port {SCAMP_PORT}, {timeout_s:g} s): {exc}"
    result = struct.unpack_from("<H", reply, 10)[0] if len(reply) >= 12 else None
    if result != SCP_RESULT_OK:
        got = "a reply too short for SCP" if result is None else f"SCP result 0x{result:04x}"
        return (f"something answered at {host} (SCP port {SCAMP_PORT}), but not as a SpiNNaker board's SCAMP "
                f"does: {got}, expected 0x{SCP_RESULT_OK:04x} (RC_OK)")
    return None


def _spalloc_answers(url: str, timeout_s: float) -> str | None:
    """None when the spalloc server accepts a TCP connection; otherwise why not."""
    parsed = urllib.parse.urlparse(url if "://" in url else f"//{url}")
    host = parsed.hostname or url
    port = parsed.port or (443 if parsed.scheme == "https" else 80 if parsed.scheme == "http" else 22244)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"the spalloc server {url} did not answer ({host}:{port}, {timeout_s:g} s): {exc}"


def choose(settings: dict, timeout_s: float = PROBE_TIMEOUT_S) -> Choice:
    """Hardware or emulation, following the machine's fallback policy. Raises with the
    reason when hardware is required and none answers."""
    policy = settings["fallback"]
    if policy not in FALLBACKS:
        raise ValueError(f"spinnaker.fallback {policy!r}; allowed: {', '.join(FALLBACKS)}")
    if policy == "emulate":
        return Choice("emulated", "the machine config asks for emulation (spinnaker.fallback: emulate)")
    if settings.get("machine_name"):
        problem = _scamp_answers(str(settings["machine_name"]), timeout_s)
        target = f"board {settings['machine_name']}"
    elif settings.get("spalloc_server"):
        problem = _spalloc_answers(str(settings["spalloc_server"]), timeout_s)
        target = f"spalloc server {settings['spalloc_server']}"
    else:
        problem, target = "the machine config names no board (spinnaker.machine_name) and no spalloc_server", "none"
    if problem is None:
        return Choice("hardware", f"{target} answered")
    if policy == "require_hardware":
        raise RuntimeError(f"spinnaker.fallback is require_hardware, but {problem}. Check the board and the "
                           "machine config, or set spinnaker.fallback to prefer_hardware or emulate")
    return Choice("emulated", f"{problem}; spinnaker.fallback is prefer_hardware, so the run is emulated")


def config_text(settings: dict, mode: str, run_dir: Path) -> str:
    """The sPyNNaker configuration of one run (INI). Emulated runs map onto a virtual board
    of the configured version (5: a 48-chip SpiNN-5 board)."""
    lines = ["[Machine]", f"version = {int(settings['version'])}"]
    if mode == "emulated":
        lines.append("virtual_board = True")
    elif settings.get("machine_name"):
        lines.append(f"machineName = {settings['machine_name']}")
    else:
        lines.append(f"spalloc_server = {settings['spalloc_server']}")
        if settings.get("spalloc_user"):
            lines.append(f"spalloc_user = {settings['spalloc_user']}")
    lines += [f"time_scale_factor = {settings['time_scale_factor']}",
              "", "[Reports]", f"default_report_file_path = {run_dir / 'reports'}",
              # the toolchain's energy report needs its power-monitor cores: hardware only
              f"write_energy_report = {mode == 'hardware'}",
              "read_router_provenance_data = " + str(mode == "hardware"),
              "", "[Mode]", "mode = Production", ""]
    return "\n".join(lines)


def isolate(run_dir: Path, text: str) -> Path:
    """Write the configuration as the only user configuration sPyNNaker will find: HOME and
    the XDG config directories of this process point into the run directory."""
    home = run_dir / "home"
    for sub in ("home", "xdg_config", "xdg_config_dirs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    cfg = home / ".spynnaker.cfg"
    cfg.write_text(text)
    os.environ["HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(run_dir / "xdg_config")
    os.environ["XDG_CONFIG_DIRS"] = str(run_dir / "xdg_config_dirs")
    return cfg
