#!/usr/bin/env python3
"""Time pydicom decoding every frame of a DICOM file, for csnav's decode benchmark.

usage: pydicom_decode_bench.py FILE REPEATS
Prints one line of JSON: {"frames": N, "best_s": seconds, "plugin": "..."}; each repeat reads
the file and decodes all frames (`Dataset.pixel_array`), as csnav's read does.
"""
import json
import sys
import time

import pydicom


def main() -> int:
    path, repeats = sys.argv[1], int(sys.argv[2])
    best = float("inf")
    frames = 0
    for _ in range(repeats):
        start = time.perf_counter()
        ds = pydicom.dcmread(path)
        array = ds.pixel_array
        best = min(best, time.perf_counter() - start)
        frames = int(getattr(ds, "NumberOfFrames", 1))
        assert array.shape[0] == frames
    wanted = ("libjpeg", "rle", "openjpeg", "jpeg_ls")
    plugins = ",".join(sorted({m.split(".")[0] for m in sys.modules if m.startswith(wanted)}))
    print(json.dumps({"frames": frames, "best_s": best, "plugin": plugins or "pydicom native"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
