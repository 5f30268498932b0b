#!/usr/bin/env bash
# Regenerates the bundled sample run assets/samples/xa-test-pattern-lao30.dcm: a csnav test
# pattern (192x192, 16 frames, 8-bit, LAO 30, 15 frames/s, R-wave pointers), compressed by
# dcmtk in JPEG Lossless SV1, the syntax of cardiac XA media (PS3.11 STD-XABC-CD).
# It is a synthetic pattern, not a patient image; the simulator issue replaces it with a
# synthetic venogram. Run from the repository root after `cargo build -p workstation`.
set -euo pipefail
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$csnav" test-pattern --out "$tmp/native.dcm" --rows 192 --columns 192 --frames 16 --bits-stored 8 --seed 30 >/dev/null
dcmcjpeg +e1 "$tmp/native.dcm" assets/samples/xa-test-pattern-lao30.dcm
ls -l assets/samples/xa-test-pattern-lao30.dcm
