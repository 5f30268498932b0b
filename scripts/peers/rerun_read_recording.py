#!/usr/bin/env python3
"""Read a csnav recording back with rerun-sdk (0.36.3), as an independent peer in csnav's tests.

usage: rerun_read_recording.py FILE.rrd
Prints one JSON object of counts, all read through rerun-sdk's RrdReader (chunks as Arrow
record batches; no byte parsing here). Rows are counted where the named component is set:
  tip_samples, tip_samples_per_tool  Points3D:positions at /world/tips/<tool>
  frames_per_run                     Image:buffer at /world/runs/run<N>/image
  tree_branches_per_run              strips in the latest LineStrips2D at /world/runs/run<N>/image/tree
  tree3d_branches                    strips in the latest LineStrips3D at /world/tree3d
  thresholds                         {entity: [volts]} under /device/thresholds/**/capture_volts
  device_log_rows                    TextLog:text at /device/log
  beats, egm_samples                 Scalars:scalars at /device/beats/capture, /device/egm/lv_tip_mv
  session_mode                       "mode" of the csnav.record JSON at /session
  has_footer                         the file ends in its RRD footer (manifest); a truncated file
                                     still reads, chunk by chunk up to the cut, but has none
Exits 2 with a message on stderr if the file cannot be read.
"""
import json
import re
import sys
import warnings
from collections import defaultdict

import rerun as rr
from rerun.experimental import RrdReader


def rows(chunk, component):
    """(row id, value) of each row of `chunk` where `component` is set."""
    batch = chunk.to_record_batch()
    if component not in batch.schema.names:
        return []
    ids = batch.column("rerun.controls.RowId").to_pylist()  # big-endian TUIDs: byte order is log order
    return [(i, v) for i, v in zip(ids, batch.column(component).to_pylist()) if v is not None]


def latest(found):
    """The value of the last-logged row among (row id, value) pairs, or None."""
    return max(found, key=lambda r: r[0])[1] if found else None


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():  # "no footer/manifest" is reported as has_footer instead
            warnings.simplefilter("ignore")
            reader = RrdReader(sys.argv[1])
        recordings = reader.recordings()
        chunks = list(reader.stream())
    except Exception as e:  # ValueError (no such file), RuntimeError (not an RRD, cut in its header)
        print(f"rerun_read_recording: cannot read {sys.argv[1]}: {e}", file=sys.stderr)
        return 2

    tips, frames, beats, egm, log = defaultdict(int), defaultdict(int), 0, 0, 0
    tree2d, tree3d, thresholds, session = defaultdict(list), [], defaultdict(list), []
    for c in chunks:
        path = c.entity_path
        if m := re.fullmatch(r"/world/tips/([^/]+)", path):
            tips[m[1]] += len(rows(c, "Points3D:positions"))
        elif m := re.fullmatch(r"/world/runs/run(\d+)/image", path):
            frames[m[1]] += len(rows(c, "Image:buffer"))
        elif m := re.fullmatch(r"/world/runs/run(\d+)/image/tree", path):
            tree2d[m[1]] += rows(c, "LineStrips2D:strips")
        elif path == "/world/tree3d":
            tree3d += rows(c, "LineStrips3D:strips")
        elif re.fullmatch(r"/device/thresholds/.+/capture_volts", path):
            thresholds[path] += rows(c, "Scalars:scalars")
        elif path == "/device/log":
            log += len(rows(c, "TextLog:text"))
        elif path == "/device/beats/capture":
            beats += len(rows(c, "Scalars:scalars"))
        elif path == "/device/egm/lv_tip_mv":
            egm += len(rows(c, "Scalars:scalars"))
        elif path == "/session":
            session += rows(c, "csnav.record")

    try:
        reader.store()  # opens the footer's manifest; raises RuntimeError where there is none
        has_footer = True
    except RuntimeError:
        has_footer = False
    record = latest(session)  # a batch of one JSON string
    print(json.dumps({
        "rerun_sdk_version": rr.__version__,
        "recordings": len(recordings),
        "chunks": len(chunks),
        "has_footer": has_footer,
        "tip_samples": sum(tips.values()),
        "tip_samples_per_tool": dict(tips),
        "frames_per_run": dict(frames),
        "tree_branches_per_run": {n: len(latest(r)) for n, r in tree2d.items()},
        "tree3d_branches": len(latest(tree3d)) if tree3d else None,
        "thresholds": {p: [v for _, batch in sorted(r) for v in batch] for p, r in thresholds.items()},
        "device_log_rows": log,
        "beats": beats,
        "egm_samples": egm,
        "session_mode": json.loads(record[0]).get("mode") if record else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
