#!/usr/bin/env bash
# The main job on the bundled case (assets/cases/synthetic-seed7: a synthetic patient in
# LAO 30 and RAO 30 with ground truth): builds csnav, summarises both venogram runs
# (geometry, timing, ECG pointers, what was defaulted), then segments each into the labelled
# CS branch tree (out/segment/<view>/: tree.json, mask.png, vesselness.png, overlay.png).
# Installs missing Debian build packages first (apt-get, as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
cargo build --locked -p workstation --bin csnav
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
echo
echo "csnav is research software, not a cleared medical device."
echo
"$csnav" info assets/cases/synthetic-seed7/lao30.dcm assets/cases/synthetic-seed7/rao30.dcm
for view in lao30 rao30; do
  echo
  "$csnav" segment "assets/cases/synthetic-seed7/$view.dcm" --out "out/segment/$view" "$@"
done
echo
# A recorded session on the synthetic patient: the runs, the tip to the target, a threshold test.
"$csnav" sim-session --case assets/cases/synthetic-seed7 --record out/session.rrd
"$csnav" record-info out/session.rrd
