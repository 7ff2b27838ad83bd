"""Turn a backend's software entry into the commands that start its Python.

kinds (config/software/*.yaml):
- venv:    an environment make builds in .venvs/<name> (name: the backend unless given):
           `make env` from envs/<backend>.txt, `make nest-mpi` for .venvs/nest-mpi
- python:  an existing interpreter (a path, or a command on PATH) with spikescale installed
- modules: environment modules loaded first (`module load a b`), then the interpreter, which
           must have spikescale installed
- conda:   Snakemake activates the entry's `file` itself (`--sdm conda`); use its python
Every environment imports spikescale as an installed package (pyproject.toml): no run edits
sys.path or PYTHONPATH. Every value is checked against a strict pattern by the schema and
quoted here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

# Environments in .venvs that `make env` does not build, and the make target that does.
VENV_BUILDERS = {"nest-mpi": "`make nest-mpi`", "brian2genn": "`make genn`", "genn": "`make genn`"}

# The GeNN 4 release brian2genn runs on, which `make genn` (envs/build_genn.sh) unpacks and
# builds into the cache, outside any clone.
GENN4_VERSION = "4.9.0"


def cache_dir() -> Path:
    """The cache shared by every clone (envs/build_genn.sh, envs/build_nest_mpi.sh use the
    same): $SPIKESCALE_CACHE, else $XDG_CACHE_HOME/spikescale, else ~/.cache/spikescale."""
    if os.environ.get("SPIKESCALE_CACHE"):
        return Path(os.environ["SPIKESCALE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spikescale"


def default_genn_path() -> Path:
    """Where `make genn` puts GeNN 4: brian2genn's GeNN when neither the entry's genn_path
    nor GENN_PATH names another."""
    return cache_dir() / f"genn-{GENN4_VERSION}"


def genn_path(entry: dict) -> tuple[str, str]:
    """brian2genn's GeNN and where that choice came from: the entry's genn_path, else
    GENN_PATH of the environment the workflow runs in (a cluster's `module load genn` sets
    it), else `make genn`'s build in the cache (default_genn_path)."""
    if entry.get("genn_path"):
        return entry["genn_path"], "genn_path"
    if os.environ.get("GENN_PATH"):
        return os.environ["GENN_PATH"], "GENN_PATH"
    return str(default_genn_path()), "the default"


def interpreter(entry: dict, backend: str, repo_root: Path) -> str:
    env = entry["environment"]
    kind = env["kind"]
    if kind == "venv":
        return str(repo_root / ".venvs" / env.get("name", backend) / "bin" / "python")
    if kind in ("python", "modules"):
        return env.get("interpreter", "python3")
    if kind == "conda":
        return "python"
    raise ValueError(f"unknown environment kind {kind!r}")


def conda_file(entry: dict, backend: str) -> str:
    """The conda environment file a rule declares (repository-relative): the entry's own with
    kind conda, else envs/<backend>.yaml (used only under `--sdm conda`)."""
    env = entry["environment"]
    return env["file"] if env["kind"] == "conda" else f"envs/{backend}.yaml"


def setup_command(entry: dict, backend: str | None = None) -> str:
    """Shell words that prepare the environment, ending in '&& ' (empty if none). A brian2genn
    run gets GENN_PATH exported, as chosen at planning (genn_path): the entry's genn_path, the
    workflow's GENN_PATH, or `make genn`'s build in the cache."""
    env = entry["environment"]
    words = ""
    if env["kind"] == "modules":
        words += "module load " + " ".join(shlex.quote(m) for m in env["modules"]) + " && "
    if "genn_path" in entry or backend == "brian2genn":  # where GeNN 4 is (not on PyPI)
        words += f"export GENN_PATH={shlex.quote(genn_path(entry)[0])} && "
    return words


def genn_missing(entry: dict) -> str | None:
    """brian2genn: why GeNN 4 cannot be found, with what to do (None when it can). The entry's
    genn_path wins; then GENN_PATH of the environment the workflow runs in (modules listed in
    the entry load only at run time, so name the path or load the module before starting the
    workflow); then `make genn`'s build in the cache (default_genn_path)."""
    path, source = genn_path(entry)
    if (Path(path) / "bin" / "genn-buildmodel.sh").is_file():
        return None
    if source == "the default":
        found = (f"neither genn_path in its software entry nor GENN_PATH is set, and `make genn` has not built "
                 f"GeNN {GENN4_VERSION} into {path}")
    else:
        found = f"{source} {path!r} is not a GeNN 4.x installation (no bin/genn-buildmodel.sh)"
    return (f"brian2genn needs GeNN 4.x, which is not on PyPI: {found}. Run `make genn` (it builds GeNN "
            f"{GENN4_VERSION} into the cache, where brian2genn finds it), or set genn_path in the brian2genn entry "
            "of config/software/<file>.yaml to a GeNN 4.x source tree (the cluster's installation), or export "
            "GENN_PATH before starting the workflow; see README, 'GeNN'")


def python_command(entry: dict, backend: str, repo_root: Path) -> str:
    """The backend's Python (spikescale is installed in it)."""
    return shlex.quote(interpreter(entry, backend, repo_root))


def _lacks_spikescale(python: str) -> bool:
    """True when an interpreter found here cannot import spikescale."""
    try:
        proc = subprocess.run([python, "-c", "import spikescale"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False  # cannot tell here (it may only work on the compute nodes)
    return proc.returncode != 0


def missing_environment(entry: dict, backend: str, repo_root: Path) -> str | None:
    """A clear message when an environment the config relies on has not been built, or an
    existing interpreter lacks spikescale."""
    env = entry["environment"]
    if backend == "brian2genn":
        missing = genn_missing(entry)
        if missing:
            return missing
    if env["kind"] == "venv":
        python = Path(interpreter(entry, backend, repo_root))
        if not python.exists():
            how = VENV_BUILDERS.get(env.get("name", backend), "`make env`")
            return (f"the {backend} environment is missing ({python}); build it with {how} "
                    f"or point config/software at an existing interpreter (kind: python)")
    if env["kind"] == "python":
        python = shutil.which(interpreter(entry, backend, repo_root))
        if python and _lacks_spikescale(python):
            return (f"the {backend} interpreter {python} cannot import spikescale; install it there once with "
                    f"`{python} -m pip install --no-deps -e {repo_root}` (docs/architecture.md)")
    return None


def make_targets(campaign, repo_root: Path) -> list[str]:
    """The make targets that build a campaign's environments beyond `make env`'s: the venvs
    of its software variants that have an envs/<name>.txt (a second Brian2, ...), NEST with
    MPI, brian2genn's environment. `make run` builds them before the workflow starts."""
    targets = []
    for backend in campaign.experiment["backends"]:
        for variant in campaign.variants_of(backend):
            env = campaign.entry(backend, variant)["environment"]
            if env["kind"] != "venv":
                continue
            name = env.get("name", backend)
            if name == "nest-mpi":
                target = "nest-mpi"
            elif name == "brian2genn":
                target = "brian2genn-env"
            elif (repo_root / "envs" / f"{name}.txt").is_file():
                target = f".venvs/{name}/.installed"
            else:
                continue
            if target not in targets:
                targets.append(target)
    return targets


def main(argv=None) -> int:
    """`python -m spikescale.software make-targets --experiment <name>`: what `make run` builds."""
    import argparse
    import sys

    from spikescale.config import load_campaign
    from spikescale.errors import ConfigError

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["make-targets"])
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    args = parser.parse_args(argv)
    try:
        campaign = load_campaign(args.experiment, args.config_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(" ".join(make_targets(campaign, args.config_dir.resolve().parent) or ["env"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
