#!/usr/bin/env bash
# Dependency rules of docs/ARCHITECTURE.md: domain crates never depend on bevy (or any UI),
# and venogram depends on no other csnav crate.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in venogram navigation device-link simulator recording dicom-net training; do
  if cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(bevy|egui|winit|wgpu)' ; then
    echo "architecture: $crate depends on a UI crate (above); domain crates must not" >&2
    status=1
  fi
done
if cargo tree --locked -p venogram -e normal --prefix none | grep -E '^(navigation|device-link|simulator|workstation) '; then
  echo "architecture: venogram depends on another csnav crate (above); it must not" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "architecture: dependency rules hold"
exit "$status"
