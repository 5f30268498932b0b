#!/usr/bin/env bash
# The main job on the bundled sample: builds csnav and summarises the sample XA run
# (geometry, timing, ECG pointers, what was defaulted), decoding every frame.
# Installs missing Debian build packages first (apt-get, as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
cargo build --locked -p workstation --bin csnav
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
echo
echo "csnav is research software, not a cleared medical device."
echo
"$csnav" info assets/samples/xa-test-pattern-lao30.dcm "$@"
