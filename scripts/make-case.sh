#!/usr/bin/env bash
# Regenerates the bundled sample case assets/cases/synthetic-seed7: one synthetic patient
# (seed 7) in LAO 30 and RAO 30, 24 frames of 512x512 at 10 bits, compressed by dcmtk in
# JPEG Lossless SV1 (the cardiac media syntax), with its ground truth (2D truth JSON and
# vessel masks per view, the 3D patient JSON). Synthetic data, not a patient image.
# Run from the repository root; needs dcmtk (scripts/install-peers.sh installs it).
set -euo pipefail
cargo build --locked -q -p workstation --bin csnav
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
out=assets/cases/synthetic-seed7
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$csnav" simulate --seed 7 --view LAO30 --view RAO30 --size 512 --bits 10 --frames 24 --out "$tmp"
rm -rf "$out"; mkdir -p "$out"
for view in lao30 rao30; do
  dcmcjpeg +e1 "$tmp/$view.dcm" "$out/$view.dcm"
  cp "$tmp/$view.truth.json" "$tmp/$view.mask.png" "$out/"
done
cp "$tmp/patient.json" "$tmp/tracker.json" "$out/"
du -ch "$out"/* | tail -1
