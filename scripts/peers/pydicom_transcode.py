#!/usr/bin/env python3
"""Transcode a DICOM file with pydicom, as an independent peer to dcmtk in csnav's tests.

usage: pydicom_transcode.py IN OUT SYNTAX
SYNTAX is one of: implicit, explicit, deflated, rle, jpeg-ls, jpeg-ls-near,
jpeg2000, jpeg2000-lossy. Prints nothing on success; exits 2 with a message otherwise.
"""
import sys

import pydicom
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, syntax = sys.argv[1:]
    ds = pydicom.dcmread(src)
    if syntax in ("implicit", "explicit", "deflated"):
        # (pydicom 3 refuses to re-encode little endian data as big endian; dcmtk covers that.)
        ds.file_meta.TransferSyntaxUID = {
            "implicit": ImplicitVRLittleEndian,
            "explicit": ExplicitVRLittleEndian,
            "deflated": DeflatedExplicitVRLittleEndian,
        }[syntax]
        ds.save_as(dst, little_endian=True, implicit_vr=(syntax == "implicit"), enforce_file_format=True)
        return 0
    if syntax == "rle":
        ds.compress(RLELossless, encoding_plugin="pydicom")
    elif syntax == "jpeg-ls":
        ds.compress(JPEGLSLossless, encoding_plugin="pyjpegls")
    elif syntax == "jpeg-ls-near":
        ds.compress(JPEGLSNearLossless, jls_error=3, encoding_plugin="pyjpegls")
    elif syntax == "jpeg2000":
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    elif syntax == "jpeg2000-lossy":
        ds.compress(JPEG2000, j2k_psnr=[50], encoding_plugin="pylibjpeg")
    else:
        print(f"unknown syntax {syntax!r}", file=sys.stderr)
        return 2
    ds.save_as(dst, enforce_file_format=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
