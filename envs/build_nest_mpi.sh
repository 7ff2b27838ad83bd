#!/usr/bin/env bash
# Build the MPI NEST environment: NEST 3.10.0 compiled WITH MPI from the PyPI source
# distribution against the system's OpenMPI, plus mpi4py (also compiled against it), the
# rest of envs/nest-mpi.txt and spikescale itself (editable), in .venvs/nest-mpi. The NEST
# wheel, the long part, is built once into a cache OUTSIDE the repository and shared by
# every clone; the venv is per clone, since it installs that clone's spikescale.
#
# Usage:
#   envs/build_nest_mpi.sh            build it, or print "reusing <path>" if it is there
#   .venvs/nest-mpi/bin/python        the interpreter to run under mpirun afterwards
#
# Where:
#   <cache> = ${SPIKESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spikescale}
#   .venvs/nest-mpi/                 the venv; its stamp file .spikescale-selftest-ok is
#                                    written only after the MPI self-test below passed and
#                                    names the wheel installed; while it names this script's
#                                    wheel folder, the script reuses the venv and exits 0
#   <cache>/wheels/nest-3.10.0-mpi-<models>-timers/  the NEST wheel built here (with NEST's
#                                    detailed timers, -Dwith-detailed-timers=ON; the folder
#                                    name says so, so that a wheel cached before without them,
#                                    ...-mpi-<models>/, is never reused), with build-info.txt
#                                    and build.log; when the venv is (re)made and a wheel is
#                                    there, it is only reinstalled, never rebuilt. Delete the
#                                    folder to force a rebuild (e.g. after an OpenMPI upgrade).
#
# Environment:
#   SPIKESCALE_CACHE        cache root (see above)
#   SPIKESCALE_NEST_MODELS  pd14 (default): compile in only the models PD14 uses (a much
#                           shorter build); full: NEST's full model set (as the PyPI wheel).
#                           Each set has its own wheel folder; switching rebuilds the venv
#                           (its stamp names the other folder) and reuses a wheel built before.
#   PYTHON                  interpreter that creates the venv (default python3)
#
# Needs (Debian/Ubuntu): apt-get install build-essential cmake openmpi-bin libopenmpi-dev
#   libgsl-dev libboost-dev libltdl-dev python3-dev python3-venv
# The build compiles with 2 parallel jobs. On 2 cores: NEST with the PD14 model set ~4 min
# idle, 6.5 min measured without detailed timers and 11 min with them (2026-11-30, the machine
# shared with other work: 8 min of CPU) (the full set ~22 min), mpi4py from source ~3 min; a
# venv rebuilt from the kept wheel (and pip's cached mpi4py wheel) takes ~25 s.
#
# Import order in one process: `import nest` FIRST, then `from mpi4py import MPI`. NEST's
# kernel calls MPI_Init_thread(FUNNELED) when nest is imported; mpi4py then sees MPI
# initialised and uses it; NEST finalises MPI at exit. The self-test runs exactly that on
# 2 ranks. (The other order also works with this build, which has no MUSIC, but then
# mpi4py initialises MPI at THREAD_MULTIPLE, more than NEST needs, unless
# `mpi4py.rc.thread_level = "funneled"` is set before `from mpi4py import MPI`.)
set -euo pipefail

cleanup=()
trap '((${#cleanup[@]} == 0)) || rm -rf "${cleanup[@]}"' EXIT

NEST_VERSION=3.10.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
requirements="$here/nest-mpi.txt"
cache="${SPIKESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spikescale}"
env_dir="$repo/.venvs/nest-mpi"
stamp="$env_dir/.spikescale-selftest-ok"
python="${PYTHON:-python3}"
models_choice="${SPIKESCALE_NEST_MODELS:-pd14}"

# The wheel folder names what is compiled in: the model set and the detailed timers.
wheel_dir="$cache/wheels/nest-$NEST_VERSION-mpi-$models_choice-timers"
# A venv stamped with another wheel folder (an older build, e.g. without detailed timers, or
# the other model set) is rebuilt.
if [[ -f "$stamp" ]] && grep -qF "wheel $wheel_dir/" "$stamp"; then
    echo "reusing $env_dir"
    exit 0
fi
script_start=$(date +%s)

# --- checks up front -------------------------------------------------------------------
apt_hint="on Debian/Ubuntu: apt-get install build-essential cmake openmpi-bin libopenmpi-dev libgsl-dev libboost-dev libltdl-dev python3-dev python3-venv"
missing=()
for cmd in "$python" mpicc mpirun cmake c++ make; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if ((${#missing[@]})); then
    echo "error: missing command(s): ${missing[*]}" >&2
    echo "       $apt_hint" >&2
    exit 2
fi
# Headers NEST's CMake looks for (GSL, Boost, libltdl) and Python's own.
for header in gsl/gsl_rng.h boost/version.hpp ltdl.h; do
    if ! echo "#include <$header>" | c++ -E -x c++ - >/dev/null 2>&1; then
        missing+=("$header")
    fi
done
py_include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" || py_include=""
[[ -f "$py_include/Python.h" ]] || missing+=("Python.h")
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python venv/ensurepip")
if ((${#missing[@]})); then
    echo "error: missing development file(s): ${missing[*]}" >&2
    echo "       $apt_hint" >&2
    exit 2
fi
if ! mpicc --showme:version 2>/dev/null | grep -q "Open MPI"; then
    echo "warning: mpicc is not Open MPI's ($(mpicc --version 2>&1 | head -n1)); untested" >&2
fi

case "$models_choice" in
    pd14)
        # Header names in NEST's models/ (without .h), semicolon-separated. NEST's kernel
        # and PyNEST start with no models at all (cf. modelsets/empty), so only what PD14
        # creates or connects with is listed.
        models="iaf_psc_exp;poisson_generator;dc_generator;parrot_neuron;spike_recorder;static_synapse"
        model_args=("-Dwith-models=$models")
        ;;
    full) model_args=() ;;
    *)
        echo "error: SPIKESCALE_NEST_MODELS must be pd14 or full, not '$models_choice'" >&2
        exit 2
        ;;
esac

# mpirun refuses root unless told; CI runs as root, users do not.
mpirun_args=(--oversubscribe -n 2)
if [[ "$(id -u)" == 0 ]]; then
    mpirun_args=(--allow-run-as-root "${mpirun_args[@]}")
fi

# --- the venv with everything but NEST --------------------------------------------------
rm -rf "$env_dir"
mkdir -p "$cache" "$(dirname "$env_dir")"
echo "creating $env_dir"
"$python" -m venv "$env_dir"
pip=("$env_dir/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
# mpi4py compiles with mpicc here (--no-binary in the requirements file).
step_start=$(date +%s)
MPICC="$(command -v mpicc)" "${pip[@]}" install --quiet -r "$requirements"
echo "installed $(basename "$requirements") in $(($(date +%s) - step_start))s"

# --- the NEST wheel: built once, then only reinstalled -----------------------------------
py_tag="$("$env_dir/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
shopt -s nullglob
wheels=("$wheel_dir"/nest_simulator-"$NEST_VERSION"-"$py_tag"-*.whl)
shopt -u nullglob

if ((${#wheels[@]} == 0)); then
    # What the PyPI wheel is built with (its pyproject.toml: GSL, Boost, OpenMP, with-optimize
    # -O2, and scikit-build-core's default CMAKE_BUILD_TYPE=Release, whose -O3 -DNDEBUG come
    # last and so win), plus MPI and the model list. scikit-build-core puts CMAKE_ARGS after
    # pyproject's defines, so these override them. -Dwith-detailed-timers=ON: NEST's
    # per-thread kernel timers of the simulation loop (time_update, time_deliver_spike_data,
    # time_gather_spike_data, ...), which the phase-breakdown figure splits t_sim into; the
    # PyPI wheel has none of them.
    cmake_args="-Dwith-mpi=ON -Dwith-openmp=ON -Dwith-gsl=ON -Dwith-boost=ON -Dwith-optimize=-O2 -Dwith-detailed-timers=ON ${model_args[*]}"
    mkdir -p "$wheel_dir"
    work="$(mktemp -d "$wheel_dir/.build.XXXXXX")"
    cleanup+=("$work")
    log="$wheel_dir/build.log"
    echo "building NEST $NEST_VERSION with MPI from the PyPI sdist (models: $models_choice), 2 jobs"
    echo "  CMAKE_ARGS=$cmake_args"
    echo "  log: $log"
    "${pip[@]}" download --quiet --no-deps --no-binary :all: "nest-simulator==$NEST_VERSION" -d "$work/sdist"
    sdist=("$work"/sdist/nest_simulator-"$NEST_VERSION".tar.gz)
    start=$(date +%s)
    # --no-cache-dir: pip's wheel cache is keyed by the sdist alone, not by CMAKE_ARGS; it
    # would hand this build to any later `pip install --no-binary nest-simulator`, and hand
    # back an earlier build with other options instead of building.
    if ! CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=2 MAKEFLAGS=-j2 \
        "${pip[@]}" wheel --verbose --no-cache-dir --no-build-isolation --no-deps \
        "${sdist[0]}" -w "$work/wheel" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "error: the NEST build failed; full log in $log" >&2
        exit 1
    fi
    elapsed=$(($(date +%s) - start))
    built=("$work"/wheel/nest_simulator-*.whl)
    mv "${built[0]}" "$wheel_dir/"
    wheels=("$wheel_dir/$(basename "${built[0]}")")
    {
        echo "nest-simulator $NEST_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${elapsed}s"
        echo "CMAKE_ARGS=$cmake_args"
        echo "detailed timers: on (-Dwith-detailed-timers=ON)"
        echo "python $("$env_dir/bin/python" -c 'import sys; print(sys.version.split()[0])')"
        echo "mpicc: $(mpicc --showme:version 2>&1)"
        echo "c++: $(c++ --version | head -n1)"
    } >"$wheel_dir/build-info.txt"
    printf 'built %s in %dm%02ds\n' "${wheels[0]}" $((elapsed / 60)) $((elapsed % 60))
else
    echo "reinstalling the wheel built before: ${wheels[0]}"
fi
# --no-deps: the requirements above are the environment; see envs/nest-mpi.txt.
"${pip[@]}" install --quiet --no-deps "${wheels[0]}"
# spikescale itself, as in every environment (pyproject.toml)
"${pip[@]}" install --quiet --no-deps -e "$repo"

# --- self-test ------------------------------------------------------------------------------
# NEST and mpi4py must load the same libmpi (the system's).
libmpi_of() { ldd "$1" | awk '/libmpi\.so/ {print $3; exit}'; }
read -r mpi4py_so nest_so < <("$env_dir/bin/python" - <<'EOF'
import glob, importlib.util, os
m = importlib.util.find_spec("mpi4py.MPI").origin
d = os.path.dirname(importlib.util.find_spec("nest").origin)
libs = sorted(glob.glob(os.path.join(d, "**", "*nestkernel*.so*"), recursive=True))
print(m, libs[0] if libs else "-")
EOF
)
mpi4py_libmpi="$(libmpi_of "$mpi4py_so")"
nest_libmpi="$( [[ "$nest_so" != - ]] && libmpi_of "$nest_so" || true)"
echo "mpi4py links ${mpi4py_libmpi:-no libmpi}; NEST ($nest_so) links ${nest_libmpi:-no libmpi}"
if [[ -z "$mpi4py_libmpi" || "$mpi4py_libmpi" != "$nest_libmpi" ]]; then
    echo "error: NEST and mpi4py do not link the same libmpi" >&2
    exit 1
fi

selftest="$(mktemp --suffix=.py)"
cleanup+=("$selftest")
cat >"$selftest" <<'EOF'
import warnings

import nest  # first: NEST's kernel initialises MPI (MPI_Init_thread, FUNNELED)
from mpi4py import MPI  # then: mpi4py finds MPI initialised and uses it
from mpi4py import __version__ as mpi4py_version

comm = MPI.COMM_WORLD
assert MPI.Is_initialized() and MPI.Query_thread() == MPI.THREAD_FUNNELED, MPI.Query_thread()
assert nest.build_info["have_mpi"] is True, nest.build_info
assert nest.NumProcesses() == 2 and comm.Get_size() == 2, (nest.NumProcesses(), comm.Get_size())
assert nest.Rank() == comm.Get_rank()
need_nodes = {"iaf_psc_exp", "poisson_generator", "dc_generator", "parrot_neuron", "spike_recorder"}
assert need_nodes <= set(nest.node_models), need_nodes - set(nest.node_models)
assert "static_synapse" in nest.synapse_models
# The detailed timers (-Dwith-detailed-timers=ON): time_update only exists with them, one
# entry per thread.
kernel_status = nest.GetKernelStatus()
assert "time_update" in kernel_status and len(kernel_status["time_update"]) == nest.local_num_threads, sorted(
    k for k in kernel_status if k.startswith("time_"))

nest.ResetKernel()
nest.verbosity = nest.VerbosityLevel.ERROR
nest.rng_seed = 1
neurons = nest.Create("iaf_psc_exp", 40)
pg = nest.Create("poisson_generator", params={"rate": 20000.0})
dc = nest.Create("dc_generator", params={"amplitude": 100.0})
parrots = nest.Create("parrot_neuron", 10)
sr = nest.Create("spike_recorder")
nest.Connect(pg, parrots)
nest.Connect(parrots, neurons, {"rule": "fixed_total_number", "N": 200},
             {"synapse_model": "static_synapse", "weight": 40.0, "delay": 1.0})
nest.Connect(pg, neurons, syn_spec={"weight": 20.0, "delay": 1.0})
nest.Connect(dc, neurons)
nest.Connect(neurons, sr)
nest.Simulate(200.0)

with warnings.catch_warnings():  # "inherently unsafe" in general; fine for counting
    warnings.simplefilter("ignore")
    local_neurons = len(nest.GetLocalNodeCollection(neurons))
local_spikes = sr.n_events  # the recorder's events on this rank
counts = comm.gather((local_neurons, local_spikes), root=0)  # mpi4py collective after NEST ran
total_spikes = comm.allreduce(local_spikes)
if comm.Get_rank() == 0:
    assert sum(n for n, _ in counts) == 40 and all(n > 0 for n, _ in counts), counts
    assert total_spikes > 0, counts
    print(f"self-test ok: NEST {nest.__version__}, {nest.NumProcesses()} ranks, {MPI.Get_library_version().split(',')[0]} via mpi4py {mpi4py_version}, "
          f"thread level FUNNELED, (local neurons, local spikes) per rank {counts}, total spikes {total_spikes}")
EOF
echo "self-test: mpirun ${mpirun_args[*]} $env_dir/bin/python <import nest; from mpi4py import MPI; ...>"
PYNEST_QUIET=1 mpirun "${mpirun_args[@]}" "$env_dir/bin/python" "$selftest"

{
    echo "self-test passed $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "wheel ${wheels[0]}"
} >"$stamp"
total=$(($(date +%s) - script_start))
printf 'built %s (%s) in %dm%02ds\n' "$env_dir" "$(du -sh "$env_dir" | cut -f1)" $((total / 60)) $((total % 60))
