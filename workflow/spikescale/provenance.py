"""Where and with what a run was made: host, CPU, packages, git state, SLURM variables.

Anything that cannot be found is recorded as "unavailable: <reason>", never guessed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
# Distributions whose versions change what a run measures.
PACKAGES = ("nest-simulator", "numpy", "scipy", "h5py", "psutil", "mpi4py", "snakemake", "pandas")


def unavailable(reason: str) -> str:
    return f"unavailable: {reason}"


def package_versions(names=PACKAGES) -> dict:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = unavailable("not installed")
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError as exc:
        return unavailable(str(exc))
    return platform.processor() or unavailable("no model name in /proc/cpuinfo")


def git_state(repo: Path = REPO_ROOT) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
        return {"git_commit": commit, "git_dirty": dirty}
    except FileNotFoundError:
        return {"git_commit": unavailable("git not found"), "git_dirty": ""}
    except (subprocess.SubprocessError, OSError) as exc:
        reason = exc.stderr.strip().splitlines()[-1] if getattr(exc, "stderr", None) else str(exc)
        return {"git_commit": unavailable(reason), "git_dirty": ""}


def slurm_variables() -> dict:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("SLURM_")}


def config_sha256(resolved: dict) -> str:
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def collect_host() -> dict:
    physical = psutil.cpu_count(logical=False) or 0
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cores_logical": os.cpu_count() or 0,
        "cores_physical": physical or unavailable("psutil could not tell"),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": platform.platform(),
        "python_executable": sys.executable,
    }
