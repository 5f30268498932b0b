#!/usr/bin/env bash
# Installs the Rerun peer csnav's recordings are read back with, idempotently: a Python venv
# (default ~/.cache/csnav/rerun-venv, override with CSNAV_RERUN_VENV) with rerun-sdk, pinned to
# the version of the Rust `rerun` crate (Cargo.toml), which also bundles the `rerun` CLI
# (`<venv>/bin/rerun rrd verify FILE.rrd`). pyarrow and numpy come with rerun-sdk.
# Needs root for apt-get (or sudo) only if python3-venv (or, via system-packages.sh, a build
# package) is missing. Works offline once installed.
# Prints the venv's python path on its last line.
set -euo pipefail

"$(dirname "$0")/system-packages.sh" python3-venv

venv="${CSNAV_RERUN_VENV:-$HOME/.cache/csnav/rerun-venv}"
stamp="$venv/.csnav-rerun-0.36.3"
if [ ! -f "$stamp" ]; then
  echo "install-rerun-peer: creating $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'rerun-sdk==0.36.3' >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
