#!/usr/bin/env bash
# Build the Python environment of the INM-6 reference PD14 (microcircuit-PD14-model),
# which tests/benchmarks/reference_comparison.py runs side by side with spikescale.
#
# Usage:
#   tests/benchmarks/build_reference_env.sh /path/to/microcircuit-PD14-model/PyNEST
#
#   $1  the PyNEST folder of a local checkout of
#       https://github.com/INM-6/microcircuit-PD14-model (fetch it yourself, e.g.
#       `git clone https://github.com/INM-6/microcircuit-PD14-model`; this script never
#       downloads the reference, only its dependencies from PyPI).
#
#   SPIKESCALE_REFERENCE_VENV  where to build (default ${XDG_CACHE_HOME:-~/.cache}/spikescale/reference-venv);
#       point SPIKESCALE_REFERENCE_PYTHON at its bin/python if you build it elsewhere.
#   PYTHON  interpreter that creates the venv (default python3).
#
# The venv lives outside the repository on purpose: the reference is GPL code that
# spikescale only runs, never ships. NEST and numpy/psutil are pinned to envs/nest.txt,
# so both sides of the comparison run the very same simulator build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
src="${1:?usage: $0 /path/to/microcircuit-PD14-model/PyNEST}"
venv="${SPIKESCALE_REFERENCE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/spikescale/reference-venv}"

if [[ ! -f "$src/pyproject.toml" || ! -f "$src/src/microcircuit/network.py" ]]; then
    echo "error: $src is not the PyNEST folder of microcircuit-PD14-model" >&2
    exit 2
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
# Same NEST build (and numpy, psutil) as spikescale's own NEST environment.
"${pip[@]}" -c "$repo/envs/nest.txt" nest-simulator==3.10.0 numpy psutil
# Runtime dependencies of the reference as its pyproject.toml declares them
# (matplotlib is imported by microcircuit.helpers; the others by its CLI).
"${pip[@]}" -c "$repo/envs/nest.txt" matplotlib scipy docopt-ng ruamel.yaml
# The reference itself, from the local checkout only; --no-deps keeps pip from
# re-resolving the pins above.
"${pip[@]}" --no-deps "$src"

"$venv/bin/python" -c "import nest, microcircuit; print('reference env ok: NEST', nest.__version__, \
'microcircuit', microcircuit.__version__)"
echo "built $venv"
