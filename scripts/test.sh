#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the build packages and
# the real DICOM peers (dcmtk, pydicom, dicom3tools' dciodvfy) if missing, then formatting, clippy (warnings are
# errors), the architecture rules, and every unit, integration and interop test.
# Benchmarks are run by hand (README, "Benchmarks"), not here.
set -euo pipefail
cd "$(dirname "$0")/.."
# mesa-vulkan-drivers + libvulkan1: Mesa's software Vulkan (lavapipe) for the app's rendering
# tests where the machine has no GPU; xvfb and the X11 client libraries for the windowed one.
scripts/system-packages.sh dicom3tools mesa-vulkan-drivers libvulkan1 xvfb libx11-6 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0
export CSNAV_PEERS_VENV="${CSNAV_PEERS_VENV:-$HOME/.cache/csnav/peers-venv}"
scripts/install-peers.sh >/dev/null
export CSNAV_RERUN_VENV="${CSNAV_RERUN_VENV:-$HOME/.cache/csnav/rerun-venv}"
scripts/install-rerun-peer.sh >/dev/null
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== architecture"
scripts/check-architecture.sh
echo "== cargo test"
cargo test --locked --workspace
echo "== all checks passed"
