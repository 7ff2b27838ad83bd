#!/usr/bin/env bash
# Build GeNN, which is not on PyPI, from its released source, once, into a cache OUTSIDE the
# repository (shared by every clone; nothing of GeNN is ever committed here):
#
#   genn4   GeNN 4.9.0 for brian2genn: the source tree unpacked into <cache>/genn-4.9.0, its
#           libraries (libgenn, the single-threaded CPU backend, the CUDA backend where a CUDA
#           toolkit is found) built in place. brian2genn finds it there by default
#           (spikescale.software.default_genn_path); a software entry's genn_path or GENN_PATH
#           overrides that (README, GeNN).
#   pygenn  PyGeNN 5.4.0 (GeNN's own Python interface): a wheel built once into
#           <cache>/wheels/pygenn-5.4.0-<cpu|cudaX.Y>/, then installed into the per-clone
#           .venvs/genn with the pins of envs/genn.txt, and checked by building and running a
#           small model on GeNN's single-threaded CPU backend.
#
# Usage:
#   envs/build_genn.sh [genn4] [pygenn]    both when none is named; `make genn` runs both
#                                           (`make brian2genn-env` genn4, the .venvs/genn rule pygenn)
#
# Where:
#   <cache> = ${SPIKESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spikescale}
#   <cache>/genn-4.9.0/             there only once complete (built aside, then renamed); with
#                                   spikescale-build-info.txt. Delete it to rebuild.
#   <cache>/wheels/pygenn-5.4.0-*/  the wheel, build-info.txt and build.log; delete to rebuild
#   .venvs/genn/                    the venv; .venvs/genn/.pygenn-selftest-ok marks it done
#
# Sources, checked before anything is built (expected checksums and tag commits are below):
#   GENN_SOURCE_DIR  a folder holding genn-<version>.tar.gz (checked against its SHA-256), or a
#                    git clone of genn-team/genn holding the tag (checked: the tag's commit)
#   default          ../shared/vendor/genn-<version>.tar.gz beside the repository (CI, and
#                    machines that cannot reach GitHub), if it is there; otherwise
#                    `git clone --depth 1 --branch <version> https://github.com/genn-team/genn`
#                    (checked: the tag's commit). The GitHub path was never run on the project's
#                    machines, which cannot reach GitHub.
#
# CUDA: a toolkit is CUDA_PATH, else the one nvcc on PATH belongs to. Where there is one,
# GeNN 4's CUDA backend is built with it, and PyGeNN's too when libcuda (the NVIDIA driver,
# or the toolkit's stubs) is there to link against; otherwise the CPU backend alone, said so.
# GeNN 4.9.0 as released does not build with CUDA >= 13 (cuCtxCreate gained an argument,
# cuCtxCreate_v4): this script changes that one call in src/genn/backends/cuda/optimiser.cc to
# the form GeNN 5 itself uses, under `#if CUDA_VERSION >= 13000`, so it compiles as released
# with CUDA <= 12 and with the new signature on 13 (docs/brian2.md). It is the only change to
# GeNN's source, written into build-info.
#
# Environment: SPIKESCALE_CACHE, GENN_SOURCE_DIR, CUDA_PATH (above); PYTHON, the interpreter of
# the venvs (default python3); GENN_JOBS, parallel compile jobs (default: the number of cores).
# Needs: python3 with venv, a C++17 compiler, make, tar, pkg-config and libffi's headers
# (apt-get install build-essential pkg-config libffi-dev python3-dev python3-venv).
set -euo pipefail

GENN4_VERSION=4.9.0
GENN4_SHA256=f08b3a6c426e11d1336d0b0cd048f9f398692736a759efdfb3c8f1120d81aa42
GENN4_COMMIT=a9155521a48c9a6c348308639703d7b5eae3508d
PYGENN_VERSION=5.4.0
PYGENN_SHA256=b039eb7db7a3fe4b59cd1a4226965149b26b8f40aa85afde0d036a38209582af
PYGENN_COMMIT=dd258075263c4b2bcb6607d230add658bcc23127
GENN_REPOSITORY=https://github.com/genn-team/genn
# What PyGeNN's pyproject.toml asks to build with, plus numpy (pip wheel --no-build-isolation:
# these come from the build venv, pinned, not from whatever the registry has that day)
PYGENN_BUILD_REQUIREMENTS=(setuptools==84.2.1 pybind11==3.1.0 psutil==7.2.2 pkgconfig==1.6.0 numpy==2.3.5 wheel==0.48.0)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
cache="${SPIKESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spikescale}"
python="${PYTHON:-python3}"
jobs="${GENN_JOBS:-$(nproc)}"
env_dir="$repo/.venvs/genn"
env_stamp="$env_dir/.pygenn-selftest-ok"

cleanup=()
trap '((${#cleanup[@]} == 0)) || rm -rf "${cleanup[@]}"' EXIT

die() { echo "error: $*" >&2; exit 1; }
now() { date +%s; }
took() { local s=$(($(now) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

parts=("$@")
((${#parts[@]})) || parts=(genn4 pygenn)
for part in "${parts[@]}"; do
    [[ "$part" == genn4 || "$part" == pygenn ]] || die "unknown part '$part' (genn4, pygenn)"
done

# --- checks up front -----------------------------------------------------------------------
apt_hint="on Debian/Ubuntu: apt-get install build-essential pkg-config libffi-dev python3-dev python3-venv"
missing=()
for cmd in "$python" c++ make tar sha256sum pkg-config flock; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
((${#missing[@]} == 0)) || die "missing command(s): ${missing[*]}; $apt_hint"
pkg-config --exists libffi || die "no libffi for pkg-config (PyGeNN links it); $apt_hint"

mkdir -p "$cache"
# Two clones building at once would race on the same cache folders.
exec 9>"$cache/.genn-build.lock"
flock 9

# --- CUDA ----------------------------------------------------------------------------------
cuda=""
if [[ -n "${CUDA_PATH:-}" ]]; then
    [[ -f "$CUDA_PATH/include/cuda.h" ]] || die "CUDA_PATH=$CUDA_PATH has no include/cuda.h (not a CUDA toolkit); unset it to build GeNN's CPU backend alone"
    cuda="$CUDA_PATH"
elif command -v nvcc >/dev/null 2>&1; then
    # nvcc may be a wrapper script outside the toolkit; its dry run names the toolkit (TOP)
    top="$(nvcc --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)"
    [[ -n "$top" && -f "$top/include/cuda.h" ]] && cuda="$(cd "$top" && pwd)"
    [[ -n "$cuda" ]] || echo "warning: nvcc is on PATH but its toolkit was not found; set CUDA_PATH. Building the CPU backend alone" >&2
fi
cuda_version=""
if [[ -n "$cuda" ]]; then
    v="$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$cuda/include/cuda.h" | head -n1)"
    [[ -n "$v" ]] || die "cannot read CUDA_VERSION from $cuda/include/cuda.h"
    cuda_version="$((v / 1000)).$((v % 1000 / 10))"
    echo "CUDA toolkit: $cuda (CUDA $cuda_version)"
elif ! command -v nvcc >/dev/null 2>&1; then
    echo "no CUDA toolkit (neither CUDA_PATH nor nvcc): GeNN's CPU backend only"
fi

# --- sources --------------------------------------------------------------------------------
# unpack_source <version> <sha256> <commit> <into>: the released tree as <into>/genn-<version>,
# only from an archive whose SHA-256, or a tag whose commit, is the one expected.
unpack_source() {
    local version="$1" sha="$2" commit="$3" into="$4"
    local archive="" gitdir=""
    if [[ -n "${GENN_SOURCE_DIR:-}" ]]; then
        if [[ -f "$GENN_SOURCE_DIR/genn-$version.tar.gz" ]]; then
            archive="$GENN_SOURCE_DIR/genn-$version.tar.gz"
        elif git -C "$GENN_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
            gitdir="$GENN_SOURCE_DIR"
        else
            die "GENN_SOURCE_DIR=$GENN_SOURCE_DIR holds neither genn-$version.tar.gz nor a git clone of genn-team/genn"
        fi
    elif [[ -f "$repo/../shared/vendor/genn-$version.tar.gz" ]]; then
        archive="$(cd "$repo/../shared/vendor" && pwd)/genn-$version.tar.gz"
    else
        command -v git >/dev/null 2>&1 || die "no genn-$version.tar.gz in ../shared/vendor and no git to fetch tag $version from $GENN_REPOSITORY; set GENN_SOURCE_DIR"
        echo "fetching tag $version of $GENN_REPOSITORY"
        git clone --quiet --depth 1 --branch "$version" "$GENN_REPOSITORY" "$into/clone-$version" ||
            die "could not fetch tag $version of $GENN_REPOSITORY; set GENN_SOURCE_DIR to a folder with genn-$version.tar.gz"
        gitdir="$into/clone-$version"
    fi
    if [[ -n "$archive" ]]; then
        local got
        got="$(sha256sum "$archive" | cut -d' ' -f1)"
        [[ "$got" == "$sha" ]] || die "$archive has SHA-256 $got, not GeNN $version's released archive ($sha): refusing to build from it"
        echo "source: $archive (SHA-256 checked)"
        tar -xzf "$archive" -C "$into"
        [[ -d "$into/genn-$version" ]] || die "$archive does not unpack into genn-$version/"
        source_note="$archive, SHA-256 $sha"
    else
        local got
        if [[ "$gitdir" == "$into/clone-$version" ]]; then
            got="$(git -C "$gitdir" rev-parse HEAD)"  # the shallow clone of the tag: HEAD is its commit
        else
            got="$(git -C "$gitdir" rev-parse --verify --quiet "refs/tags/$version^{commit}")" ||
                die "$gitdir has no tag $version"
        fi
        [[ "$got" == "$commit" ]] || die "tag $version in $gitdir is commit $got, not GeNN $version's release ($commit): refusing to build from it"
        echo "source: tag $version of $gitdir (commit checked)"
        git -C "$gitdir" archive --prefix="genn-$version/" "$commit" | tar -x -C "$into"
        source_note="git tag $version, commit $commit"
    fi
}

# --- GeNN 4.9.0 for brian2genn ----------------------------------------------------------------
build_genn4() {
    local dest="$cache/genn-$GENN4_VERSION"
    if [[ -f "$dest/bin/genn-buildmodel.sh" ]]; then
        echo "reusing $dest"
        return
    fi
    local start work tree
    start=$(now)
    work="$(mktemp -d "$cache/.genn4.XXXXXX")"
    cleanup+=("$work")
    unpack_source "$GENN4_VERSION" "$GENN4_SHA256" "$GENN4_COMMIT" "$work"
    tree="$work/genn-$GENN4_VERSION"

    # The CUDA 13 change (see the top): exactly one line, or refuse.
    local optimiser="$tree/src/genn/backends/cuda/optimiser.cc"
    local call='    CHECK_CU_ERRORS(cuCtxCreate(&cuContext, 0, cuDevice));'
    [[ "$(grep -cxF "$call" "$optimiser")" == 1 ]] ||
        die "$optimiser does not hold the one cuCtxCreate call of GeNN $GENN4_VERSION this script changes for CUDA 13"
    awk -v call="$call" '$0 == call {
            print "#if CUDA_VERSION >= 13000  // spikescale: cuCtxCreate gained a parameters argument in CUDA 13"
            print "    CHECK_CU_ERRORS(cuCtxCreate(&cuContext, nullptr, 0, cuDevice));"
            print "#else"; print; print "#endif"; next } { print }' "$optimiser" >"$optimiser.new"
    mv "$optimiser.new" "$optimiser"

    # libgenn and the backends, built in the tree, where genn-buildmodel.sh links them from
    # (it rebuilds nothing that is there; a backend not built here it builds on first use)
    local log="$work/build.log" make_env=()
    [[ -n "$cuda" ]] && make_env=(CUDA_PATH="$cuda")
    echo "building GeNN $GENN4_VERSION's libraries (CPU backend${cuda:+ and CUDA backend}, $jobs jobs)"
    if ! env -u CUDA_PATH "${make_env[@]}" make -C "$tree" -j "$jobs" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        mkdir -p "$cache/logs" && cp "$log" "$cache/logs/genn-$GENN4_VERSION-build.log"
        die "building GeNN $GENN4_VERSION failed; full log: $cache/logs/genn-$GENN4_VERSION-build.log"
    fi
    {
        echo "GeNN $GENN4_VERSION for brian2genn, built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(took "$start") by spikescale's envs/build_genn.sh"
        echo "source: $source_note"
        echo "changed: src/genn/backends/cuda/optimiser.cc, cuCtxCreate under #if CUDA_VERSION >= 13000 (CUDA 13's signature)"
        echo "backends built: single_threaded_cpu${cuda:+ cuda (CUDA $cuda_version at $cuda)}"
        echo "c++: $(c++ --version | head -n1)"
    } >"$tree/spikescale-build-info.txt"
    mv "$log" "$tree/spikescale-build.log"
    mv "$tree" "$dest"  # complete: from now on brian2genn finds it
    echo "built $dest in $(took "$start")"
}

# --- PyGeNN 5.4.0 -----------------------------------------------------------------------------
build_pygenn() {
    if [[ -f "$env_stamp" ]]; then
        echo "reusing $env_dir"
        return
    fi
    local script_start py_tag flavour wheel_dir wheels
    script_start=$(now)
    py_tag="$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"

    # PyGeNN's CUDA backend links libcuda: the driver's, or the toolkit's stubs on a machine
    # that only builds (a login node)
    local link_env=()
    flavour=cpu
    if [[ -n "$cuda" ]]; then
        if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so '; then
            flavour="cuda$cuda_version"
        elif [[ -f "$cuda/lib64/stubs/libcuda.so" ]]; then
            flavour="cuda$cuda_version"
            link_env=(LIBRARY_PATH="$cuda/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}")
        else
            echo "CUDA $cuda_version is here but no libcuda (NVIDIA driver) nor $cuda/lib64/stubs to link PyGeNN's CUDA backend against: CPU backend only"
        fi
    fi
    wheel_dir="$cache/wheels/pygenn-$PYGENN_VERSION-$flavour"
    shopt -s nullglob
    wheels=("$wheel_dir"/pygenn-"$PYGENN_VERSION"-"$py_tag"-*.whl)
    shopt -u nullglob

    if ((${#wheels[@]} == 0)); then
        local start work log
        start=$(now)
        mkdir -p "$wheel_dir"
        work="$(mktemp -d "$cache/.pygenn.XXXXXX")"
        cleanup+=("$work")
        log="$wheel_dir/build.log"
        unpack_source "$PYGENN_VERSION" "$PYGENN_SHA256" "$PYGENN_COMMIT" "$work"
        echo "building the PyGeNN $PYGENN_VERSION wheel ($flavour, $jobs jobs); log: $log"
        "$python" -m venv "$work/venv"
        "$work/venv/bin/python" -m pip install --quiet --upgrade pip
        "$work/venv/bin/python" -m pip install --quiet "${PYGENN_BUILD_REQUIREMENTS[@]}"
        local cuda_env=()
        [[ "$flavour" != cpu ]] && cuda_env=(CUDA_PATH="$cuda" "${link_env[@]}")
        # --no-cache-dir: pip's wheel cache would keep a build keyed by the source alone, not
        # by the backends it was built with
        if ! (cd "$work" && env -u CUDA_PATH "${cuda_env[@]}" MAKEFLAGS="-j$jobs" \
                "$work/venv/bin/python" -m pip wheel --verbose --no-build-isolation --no-deps --no-cache-dir \
                "./genn-$PYGENN_VERSION" -w "$work/wheel" >"$log" 2>&1); then
            tail -n 40 "$log" >&2
            die "the PyGeNN build failed; full log: $log"
        fi
        local built=("$work"/wheel/pygenn-*.whl)
        mv "${built[0]}" "$wheel_dir/"
        wheels=("$wheel_dir/$(basename "${built[0]}")")
        {
            echo "pygenn $PYGENN_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(took "$start") by spikescale's envs/build_genn.sh"
            echo "source: $source_note"
            if [[ "$flavour" == cpu ]]; then echo "backends: single_threaded_cpu"; else echo "backends: single_threaded_cpu cuda (CUDA $cuda_version at $cuda)"; fi
            echo "build requirements: ${PYGENN_BUILD_REQUIREMENTS[*]}"
            echo "python $("$work/venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
            echo "c++: $(c++ --version | head -n1)"
        } >"$wheel_dir/build-info.txt"
        echo "built ${wheels[0]} in $(took "$start")"
    else
        echo "reinstalling the wheel built before: ${wheels[0]}"
    fi

    # --- the venv: envs/genn.txt, then the wheel --------------------------------------------
    rm -rf "$env_dir"
    mkdir -p "$(dirname "$env_dir")"
    "$python" -m venv "$env_dir"
    "$env_dir/bin/python" -m pip install --quiet --upgrade pip
    "$env_dir/bin/python" -m pip install --quiet -r "$here/genn.txt"
    # --no-deps: envs/genn.txt pins what PyGeNN needs
    "$env_dir/bin/python" -m pip install --quiet --no-deps "${wheels[0]}"

    # --- self-test: a model built, loaded and run on the CPU backend, from outside any source
    # tree (a pygenn/ folder in the working directory would shadow the installed package)
    local selftest_dir
    selftest_dir="$(mktemp -d)"
    cleanup+=("$selftest_dir")
    (cd "$selftest_dir" && "$env_dir/bin/python" - <<'EOF'
import numpy as np
import pygenn
from pygenn import GeNNModel, init_postsynaptic, init_weight_update

model = GeNNModel("float", "selftest", backend="single_threaded_cpu")
model.dt = 0.1
lif = {"C": 0.25, "TauM": 10.0, "Vrest": -65.0, "Vreset": -65.0, "Vthresh": -50.0, "Ioffset": 0.5, "TauRefrac": 2.0}
pop = model.add_neuron_population("pop", 10, "LIF", lif, {"V": -65.0, "RefracTime": 0.0})
pop.spike_recording_enabled = True
model.add_synapse_population("recurrent", "DENSE", pop, pop, init_weight_update("StaticPulse", {}, {"g": 0.01}),
                             init_postsynaptic("ExpCurr", {"tau": 5.0}))
model.build()
model.load(num_recording_timesteps=1000)
while model.timestep < 1000:
    model.step_time()
model.pull_recording_buffers_from_device()
times, ids = pop.spike_recording_data[0]
assert len(times) > 0 and set(np.unique(ids)) == set(range(10)), (len(times), np.unique(ids))
print(f"self-test ok: PyGeNN {pygenn.__version__}, single_threaded_cpu backend, {len(times)} spikes of 10 LIF neurons in 100 ms")
EOF
    ) || die "the PyGeNN self-test failed in $env_dir"
    {
        echo "self-test passed $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "wheel ${wheels[0]}"
    } >"$env_stamp"
    echo "built $env_dir in $(took "$script_start")"
}

for part in "${parts[@]}"; do
    case "$part" in
        genn4) build_genn4 ;;
        pygenn) build_pygenn ;;
    esac
done
