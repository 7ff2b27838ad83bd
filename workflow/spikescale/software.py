"""Turn a backend's software entry into the command prefix that starts its Python.

kinds (config/software/*.yaml):
- venv:    the environment `make env` builds from envs/<backend>.txt in .venvs/<backend>
- python:  an existing interpreter (a path, or a command on PATH)
- modules: environment modules loaded first (`module load a b`), then the interpreter
- conda:   Snakemake activates envs/<backend>.yaml itself (`--sdm conda`); use its python
Every value is checked against a strict pattern by the schema and quoted here.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def python_prefix(entry: dict, backend: str, repo_root: Path) -> str:
    env = entry["environment"]
    kind = env["kind"]
    pythonpath = f"{repo_root}:{repo_root / 'workflow'}"
    if kind == "venv":
        interpreter = str(repo_root / ".venvs" / backend / "bin" / "python")
    elif kind in ("python", "modules"):
        interpreter = env.get("interpreter", "python3")
    elif kind == "conda":
        interpreter = "python"
    else:
        raise ValueError(f"unknown environment kind {kind!r}")
    command = f"env PYTHONPATH={shlex.quote(pythonpath)} {shlex.quote(interpreter)}"
    if kind == "modules":
        command = "module load " + " ".join(shlex.quote(m) for m in env["modules"]) + " && " + command
    return command


def missing_environment(entry: dict, backend: str, repo_root: Path) -> str | None:
    """A clear message when a venv the config relies on has not been built."""
    if entry["environment"]["kind"] == "venv":
        python = repo_root / ".venvs" / backend / "bin" / "python"
        if not python.exists():
            return (f"the {backend} environment is missing ({python}); build it with `make env` "
                    f"or point config/software at an existing interpreter (kind: python)")
    return None
