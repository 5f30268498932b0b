#!/usr/bin/env bash
# Segmentation accuracy on the suite and the held-out sets, one line of means each: what every
# change to `venogram::segment` is measured with (docs/segmentation.md, "Accuracy"). The
# suite (16 cases: seeds, both views, 8 and 12 bit, 512 and 1024) is the one the tests hold;
# the held-out sets A, B and C (8 patients each, both views, 12 bit, 512) were never tuned on.
# `--1024` adds set A at a 1024 matrix (binned to the working matrix, as by default).
# `--truth-mask` runs the centerline, graph and label stages alone, on the truth's own vessel
# mask (`SegmentParams::vessel_mask`): what they give with a perfect segmentation.
# Extra environment (CSNAV_SEGMENT_AVERAGE, CSNAV_SEGMENT_FULL_RESOLUTION, ...) is passed on.
# About 1.5 minutes with the test binary built (3 more with --1024).
set -euo pipefail
cd "$(dirname "$0")/.."
with_1024=false
test_name=segmentation_holds
means_prefix="mean over"
for arg in "$@"; do
  case "$arg" in
    --1024) with_1024=true ;;
    --truth-mask) test_name=tree_stages_on_the_truth_mask; means_prefix="truth mask: mean over" ;;
    *) echo "usage: $0 [--1024] [--truth-mask]" >&2; exit 2 ;;
  esac
done
cargo test -q --workspace --test segmentation_accuracy --no-run
run() {
  local name="$1"
  shift
  local means
  means="$(env "$@" cargo test -q --workspace --test segmentation_accuracy "$test_name" -- --nocapture 2>&1 |
    grep "^$means_prefix" || true)"
  printf '%-12s %s\n' "$name" "${means:-no result (the test did not run to its means)}"
}
run suite
run "A (23..53)" CSNAV_SEGMENT_SEEDS=23,29,31,37,41,43,47,53
run "B (59..89)" CSNAV_SEGMENT_SEEDS=59,61,67,71,73,79,83,89
run "C (97..131)" CSNAV_SEGMENT_SEEDS=97,101,103,107,109,113,127,131
if $with_1024; then
  run "A at 1024" CSNAV_SEGMENT_SEEDS=23,29,31,37,41,43,47,53 CSNAV_SEGMENT_SIZE=1024
fi
