#!/usr/bin/env bash
# Vesselness against its peers: scikit-image `frangi`, SimpleITK's multiscale Hessian
# objectness and an OpenCV-Python Hessian/Frangi, at csnav's scales, on the same simulated
# LAO 30 frames (512 and 1024, 12 bits), with csnav's own vesselness stage. Prints one table:
# time per frame, the ratio to csnav, and each method's Dice against the simulator's truth.
#
# Run by hand (a benchmark, not part of CI):  benches/peers/vesselness.sh [REPEATS]
# Makes its own Python venv (default ~/.cache/csnav/vesselness-peers-venv, override with
# CSNAV_VESSELNESS_VENV) and builds csnav in release. Needs the package registries once.
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats="${1:-7}"

scripts/system-packages.sh python3-venv
venv="${CSNAV_VESSELNESS_VENV:-$HOME/.cache/csnav/vesselness-peers-venv}"
stamp="$venv/.csnav-vesselness-v1"
if [ ! -f "$stamp" ]; then
  echo "vesselness peers: creating $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'numpy>=1.26' 'pydicom>=3.0,<4' 'scikit-image>=0.22' 'SimpleITK>=2.3' 'opencv-python-headless>=4.8' 'pillow>=10'
  touch "$stamp"
fi

cargo build --release --quiet -p workstation --bin csnav
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" benches/peers/vesselness.py --csnav "$target/release/csnav" --work "$work" --repeats "$repeats"
