#!/usr/bin/env bash
# Installs the real DICOM peers csnav is tested against, idempotently:
#   Debian packages: dcmtk (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls, dcmdump, dcmdjpeg, dcmdrle),
#                    orthanc (the PACS of the query/retrieve tests; each test starts its own),
#                    python3-venv, cmake and g++ (CharLS, the JPEG-LS codec, builds from source);
#   a Python venv (default ~/.cache/csnav/peers-venv, override with CSNAV_PEERS_VENV) with
#   pydicom, numpy, pylibjpeg with its openjpeg (JPEG 2000), libjpeg (JPEG lossless) and rle plugins, pyjpegls (JPEG-LS),
#   and pyigtl (the OpenIGTLink peer).
# Needs root for apt-get (or sudo). Prints the venv's python path on its last line.
set -euo pipefail

"$(dirname "$0")/system-packages.sh" dcmtk python3-venv orthanc

venv="${CSNAV_PEERS_VENV:-$HOME/.cache/csnav/peers-venv}"
stamp="$venv/.csnav-peers-v3"
if [ ! -f "$stamp" ]; then
  echo "install-peers: creating $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'pydicom>=3.0,<4' 'numpy>=1.26' 'pylibjpeg>=2.0' 'pylibjpeg-openjpeg>=2.3' 'pylibjpeg-libjpeg>=2.1' 'pylibjpeg-rle>=2.0' 'pyjpegls>=1.4' 'pyigtl==0.3.4' >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
