#!/usr/bin/env bash
# Installs everything musicgen needs on a Debian/Ubuntu machine: system packages, a virtual
# environment in .venv, and the package itself (editable, with the dev extra).
# Without root it prints the exact apt-get command to run and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  libfluidsynth3 jackd2 xvfb xauth xdotool
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libasound2
  libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  # libasound2 is libasound2t64 on newer releases; either satisfies us.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
     && ! dpkg-query -W -f='${Status}' "${pkg}t64" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # jackd2 asks about real-time priority; answer "no" so the install never waits.
    echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing system packages with sudo: ${missing[*]}"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: these system packages are missing: ${missing[*]}" >&2
    echo "setup: run this, then run the same make command again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip -q --disable-pip-version-check)
# A CPU build of torch: the local/CPU wheel when pip can find one, else PyTorch's CPU index.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch (CPU build)"
  "${PIP[@]}" install "torch==2.13.0" 2>/dev/null \
    || "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
fi
echo "setup: installing musicgen_app and its dependencies"
"${PIP[@]}" install -e ".[dev]"
# Basic Pitch's transcription model (an ONNX file in the basic-pitch package), run with onnxruntime:
# without its dependencies, which would pull TensorFlow.
if ! .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('basic_pitch') is None)"; then
  echo "setup: installing the transcription model (basic-pitch, without TensorFlow)"
  "${PIP[@]}" install --no-deps "basic-pitch==0.4.0"
fi
echo "setup: done"
