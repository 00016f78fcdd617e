#!/usr/bin/env bash
# Set up what stembridge needs on a Debian/Ubuntu machine, from scratch; safe to re-run.
#   scripts/setup.sh            the light core: arranger + melody (no torch, transformers, demucs)
#   scripts/setup.sh --neural   adds the neural stack (torch CPU build, transformers, demucs)
#   scripts/setup.sh --worker   adds the remote generation worker's web stack (starlette, uvicorn, Ray Serve)
#   scripts/setup.sh --dev      adds the test tools (pytest, ruff, mypy, import-linter) and the worker's stack
#   - Debian packages: FluidSynth (rendering), liblo-tools (OSC test peer), lua5.4 (REAPER script tests);
#     with --dev also chromium (the session-report test renders report.html headless)
#   - a virtual environment in .venv with stembridge and the chosen extras
# A re-run with nothing changed makes no pip call: .venv/.stembridge-setup holds a hash of
# pyproject.toml, requirements-nodeps.txt, the Python version and the extras installed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=(melody)
for arg in "$@"; do
    case "$arg" in
        --neural) extras+=(neural) ;;
        --worker) extras+=(worker ray) ;;
        --dev) extras+=(dev) ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg; use --neural, --worker and/or --dev" >&2; exit 2 ;;
    esac
done

APT_PACKAGES=(libfluidsynth3 liblo-tools lua5.4)
[[ " ${extras[*]} " == *" dev "* ]] && APT_PACKAGES+=(chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "installing Debian packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "please install with your package manager: ${missing[*]} (FluidSynth 2, liblo tools, Lua 5.4)" >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

STAMP=.venv/.stembridge-setup
# the hash covers what pip would read; the extras are listed after it, one word each
inputs_hash() {
    { cat pyproject.toml requirements-nodeps.txt 2>/dev/null; .venv/bin/python -V; } | sha256sum | cut -d' ' -f1
}
hash_now="$(inputs_hash)"
if [ -f "$STAMP" ]; then
    read -r hash_done extras_done < "$STAMP" || true
    if [ "${hash_done:-}" = "$hash_now" ]; then
        # nothing changed: enough when every extra asked for is already installed
        need=()
        for e in "${extras[@]}"; do
            [[ " ${extras_done:-} " == *" $e "* ]] || need+=("$e")
        done
        if ((${#need[@]} == 0)); then
            echo "setup: .venv is up to date (${extras_done}); nothing to install"
            exit 0
        fi
    fi
    # keep what was installed before (a light run after a full one does not shrink the venv)
    for e in ${extras_done:-}; do
        [[ " ${extras[*]} " == *" $e "* ]] || extras+=("$e")
    done
fi

rm -f "$STAMP"
echo "setup: installing stembridge with extras: ${extras[*]} (the first time takes a few minutes)"
# setuptools' editable-install notice is a UserWarning of the build backend: keep it off screen
pip=(env PYTHONWARNINGS=ignore::UserWarning .venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
joined="$(IFS=,; echo "${extras[*]}")"
"${pip[@]}" -e ".[$joined]"
# basic-pitch without its pinned tensorflow: its ONNX model runs on onnxruntime (melody extra).
"${pip[@]}" --no-deps "basic-pitch==0.4.0"
if [[ " ${extras[*]} " == *" neural "* ]] && [ -f requirements-nodeps.txt ]; then
    # demucs without its file-I/O and CLI dependencies (see requirements-nodeps.txt)
    "${pip[@]}" --no-deps -r requirements-nodeps.txt
fi
echo "$hash_now ${extras[*]}" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
echo "setup done: .venv is ready (${extras[*]})"
