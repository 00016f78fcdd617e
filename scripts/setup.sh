#!/usr/bin/env bash
# Set up everything stembridge needs on a Debian/Ubuntu machine, from scratch; safe to re-run.
#   - Debian packages: FluidSynth (rendering), liblo-tools (OSC test peer), lua5.4 (REAPER script tests),
#     chromium (the session-report test renders report.html headless)
#   - a virtual environment in .venv with stembridge and its extras
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libfluidsynth3 liblo-tools lua5.4 chromium)
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
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build; the extras add the melody (basic-pitch ONNX) and neural stacks.
.venv/bin/python -m pip install -q -e ".[melody,neural,dev]"
# basic-pitch without its pinned tensorflow: its ONNX model runs on onnxruntime.
.venv/bin/python -m pip install -q --no-deps "basic-pitch==0.4.0"  # see requirements-nodeps.txt for the rest
if [ -f requirements-nodeps.txt ]; then
    .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
fi
echo "setup done: .venv is ready"
