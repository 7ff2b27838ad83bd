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


# -- beNNch-grade provenance: topology, CPU settings, libraries, MPI, environment ---------

# Environment variables that change how a run runs (threads, binding, MPI, paths), by prefix
# or exact name; any whose name looks like it holds a secret is left out all the same.
# PYTHON: the interpreter's own settings (its module path, hash seed, ...).
ENV_PREFIXES = ("OMP_", "SLURM_", "OMPI_", "PMIX_", "MPI", "NEST_", "KMP_", "GOMP_", "CUDA_", "HWLOC_",
                "SPIKESCALE_", "PYTHON")
ENV_NAMES = ("LD_LIBRARY_PATH", "PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "LOADEDMODULES", "_LMFILES_")
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASS", "KEY", "CREDENTIAL", "AUTH")
HWLOC_COMMANDS = ("lstopo-no-graphics", "hwloc-ls")
SYS_CPU = Path("/sys/devices/system/cpu")


def filtered_environment(environ=None) -> dict:
    """The relevant environment variables (ENV_PREFIXES, ENV_NAMES), none that may hold a secret."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in sorted(environ.items())
            if (k.startswith(ENV_PREFIXES) or k in ENV_NAMES) and not any(w in k.upper() for w in SECRET_WORDS)}


def environment_modules(environ=None) -> dict:
    """Loaded environment modules (Lmod, Environment Modules): LOADEDMODULES and _LMFILES_."""
    environ = os.environ if environ is None else environ
    return {"loaded_modules": environ.get("LOADEDMODULES", unavailable("LOADEDMODULES not set (no module loaded)")),
            "module_files": environ.get("_LMFILES_", unavailable("_LMFILES_ not set (no module loaded)"))}


def topology_summary(xml_text: str) -> dict:
    """Packages, cores, PUs and NUMA nodes in hwloc's XML (objects counted by type)."""
    import xml.etree.ElementTree as ET

    counts = {"Package": 0, "Core": 0, "PU": 0, "NUMANode": 0}
    for obj in ET.fromstring(xml_text).iter("object"):
        if obj.get("type") in counts:
            counts[obj.get("type")] += 1
    return {"topology_packages": counts["Package"], "topology_cores": counts["Core"], "topology_pus": counts["PU"],
            "topology_numa_nodes": counts["NUMANode"]}


def hwloc_topology(commands=HWLOC_COMMANDS, timeout_s: float = 60) -> tuple[str, dict]:
    """This node's hardware topology as hwloc's XML and its summary; where hwloc cannot
    answer, ('unavailable: <why>', {}) and the run goes on."""
    import shutil

    command = next((c for c in commands if shutil.which(c)), None)
    if command is None:
        return unavailable(f"none of {', '.join(commands)} on PATH (Debian: apt-get install hwloc-nox)"), {}
    try:
        proc = subprocess.run([command, "--of", "xml"], capture_output=True, text=True, timeout=timeout_s, check=True)
        return proc.stdout, {"topology_command": f"{command} --of xml", **topology_summary(proc.stdout)}
    except subprocess.CalledProcessError as exc:
        return unavailable(f"{command} failed ({exc.returncode}): {exc.stderr.strip()[-300:]}"), {}
    except (subprocess.SubprocessError, OSError, ValueError) as exc:  # ValueError: XML hwloc could not write
        return unavailable(f"{command}: {exc}"), {}


def cpu_frequency_settings(cpus, sys_cpu: Path = SYS_CPU) -> dict:
    """cpufreq's governor and current frequency of each of `cpus` ('cpu0=performance ...'),
    unavailable with the reason where cpufreq is absent (virtual machines, some containers)."""
    governors, freqs = [], []
    for cpu in sorted(cpus):
        base = sys_cpu / f"cpu{cpu}" / "cpufreq"
        try:
            governors.append(f"cpu{cpu}={(base / 'scaling_governor').read_text().strip()}")
            freqs.append(f"cpu{cpu}={int((base / 'scaling_cur_freq').read_text()) / 1000:.0f}")
        except (OSError, ValueError) as exc:
            reason = unavailable(f"{base}: {getattr(exc, 'strerror', None) or exc}")
            return {"cpu_governor": reason, "cpu_cur_freq_mhz": reason}
    return {"cpu_governor": " ".join(governors), "cpu_cur_freq_mhz": " ".join(freqs)}


def mpi_library() -> str:
    """The MPI library's version string, when this run has MPI (mpi4py loaded by the run);
    mpi4py is never imported here: importing it would start MPI."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None:
        return unavailable("mpi4py not loaded in this run (a run without MPI)")
    try:
        # Open MPI's string ends in NUL bytes, which an HDF5 text attribute cannot hold
        return " ".join(mpi.Get_library_version().replace("\0", " ").split())
    except Exception as exc:  # noqa: BLE001 - an MPI that cannot say is recorded as such
        return unavailable(f"mpi4py.MPI.Get_library_version: {exc}")


def shared_libraries(maps: Path = Path("/proc/self/maps")) -> list[str]:
    """The shared libraries mapped into this process (paths), from /proc/self/maps."""
    libs = set()
    try:
        for line in maps.read_text().splitlines():
            path = line.split(None, 5)[5] if len(line.split(None, 5)) == 6 else ""
            if ".so" in Path(path).name and path.startswith("/"):
                libs.add(path.strip())
    except OSError:
        return []
    return sorted(libs)


def elf_comment(path: str | os.PathLike) -> str:
    """The .comment section of an ELF file (compilers that built it, e.g. 'GCC: (GNU) 12.2.0'),
    '' when it has none or is not 64-bit little-endian ELF."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:6] != b"\x7fELF\x02\x01":
                return ""
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            sections = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
            names_off, names_size = sections[shstrndx][4], sections[shstrndx][5]
            fh.seek(names_off)
            names = fh.read(names_size)
            for name, _, _, _, offset, size in sections:
                if names[name:names.index(b"\0", name)] == b".comment":
                    fh.seek(offset)
                    text = fh.read(min(size, 4096)).split(b"\0")
                    return "; ".join(dict.fromkeys(t.decode("ascii", "replace") for t in text if t))
    except (OSError, struct.error, ValueError, IndexError):
        return ""
    return ""


def compilers(libraries: list[str]) -> dict:
    """Which compiler built what: Python itself, and each mapped library outside the system's
    folders that says so in its ELF .comment (the simulator's own libraries among them)."""
    import sysconfig

    out = {"python": f"{platform.python_compiler()}; CC={sysconfig.get_config_var('CC') or 'unknown'}"}
    for lib in libraries:
        if lib.startswith(("/usr/lib", "/lib")) or "/lib-dynload/" in lib:
            continue
        comment = elf_comment(lib)
        if comment:
            out[Path(lib).name] = comment
    return out


def node_provenance(cpus) -> dict:
    """Once per node (its first rank): topology XML and summary, CPU model, governor and frequency."""
    xml_text, summary = hwloc_topology()
    attrs = {"host": socket.gethostname(), "cpu_model": cpu_model(), **summary,
             **cpu_frequency_settings(cpus)}
    if xml_text.startswith("unavailable: "):
        attrs["topology_unavailable"] = xml_text
    return {"attrs": attrs, "topology_xml": xml_text}


def process_provenance(environ=None) -> dict:
    """What the writing rank's process ran with: MPI library, compilers, shared libraries,
    environment modules, relevant environment variables."""
    libraries = shared_libraries()
    return {"attrs": {"mpi_library": mpi_library(), **environment_modules(environ)},
            "compilers": {"attrs": compilers(libraries)},
            "environment": {"attrs": filtered_environment(environ)},
            "shared_libraries": libraries or [unavailable("/proc/self/maps could not be read")]}
