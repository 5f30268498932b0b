#!/usr/bin/env bash
# Regenerates the small committed fixtures in crates/venogram/tests/data: a 12-bit and an
# 8-bit 24x20x3 csnav test pattern, transcoded by dcmtk into the compressed syntaxes, so the
# mutation tests exercise every codec path without needing dcmtk at test time.
# Run from the repository root after building csnav (cargo build).
set -euo pipefail
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
out=crates/venogram/tests/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$csnav" test-pattern --out "$tmp/p12.dcm" --rows 20 --columns 24 --frames 3 --bits-stored 12 --seed 7 >/dev/null
"$csnav" test-pattern --out "$tmp/p8.dcm" --rows 20 --columns 24 --frames 3 --bits-stored 8 --seed 8 >/dev/null
cp "$tmp/p12.dcm" "$out/explicit_le_12bit.dcm"
dcmconv +td "$tmp/p8.dcm" "$out/deflated_8bit.dcm"
dcmcrle "$tmp/p12.dcm" "$out/rle_12bit.dcm"
dcmcjpeg +e1 "$tmp/p12.dcm" "$out/jpeg_lossless_sv1_12bit.dcm"
dcmcjpeg +eb +sr "$tmp/p8.dcm" "$out/jpeg_baseline_8bit.dcm"
dcmcjpeg +ee +sr "$tmp/p12.dcm" "$out/jpeg_extended_12bit.dcm"
dcmcjpls +el "$tmp/p12.dcm" "$out/jpeg_ls_12bit.dcm"
ls -l "$out"
