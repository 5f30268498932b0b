#!/usr/bin/env bash
# The main job on the bundled case (assets/cases/synthetic-seed7: a synthetic patient in
# LAO 30 and RAO 30 with ground truth): builds csnav and runs `csnav demo`, the scripted
# procedure end to end: both venogram runs segmented, a lead tip tracked along two branches,
# threshold, PNS and vector tests at three sites over the device link, the sites ranked, the
# session recorded. With a display the app opens; without one (or with --headless) the same
# screen is rendered offscreen and ./demo/ gets the screenshots (screen, 3D view, each venogram
# view, device panel, site table), summary.json and session.rrd. Extra arguments go to
# `csnav demo` (e.g. --headless, --out DIR, --size 2560x1440).
# Installs missing Debian packages first (apt-get, as root or with sudo): the build packages,
# and Mesa's Vulkan drivers (software rendering where there is no GPU) with the X11 client
# libraries the window needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh mesa-vulkan-drivers libvulkan1 libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0
cargo build --locked -p workstation --bin csnav
csnav="${CARGO_TARGET_DIR:-target}/debug/csnav"
echo
echo "csnav is research software, not a cleared medical device."
echo
"$csnav" demo "$@"
