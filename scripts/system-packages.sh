#!/usr/bin/env bash
# Installs the Debian packages csnav builds with, idempotently (apt-get only for what is
# missing; root, or sudo): cmake and g++ (CharLS, the JPEG-LS codec, is built from source);
# OpenCV 4.6 (libopencv-dev) with clang and libclang-dev, which the `opencv` crate uses to
# generate its bindings at build time.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
dpkg -s libopencv-dev >/dev/null 2>&1 || need+=(libopencv-dev)
for extra in "$@"; do
  case "$extra" in
    dcmtk) command -v dcmdump >/dev/null 2>&1 || need+=(dcmtk) ;;
    python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv) ;;
    *) dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra") ;;
  esac
done
if ((${#need[@]})); then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  echo "csnav: installing Debian packages: ${need[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
