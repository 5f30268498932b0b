"""pyigtl (0.3.4) as the OpenIGTLink peer of csnav's interop tests.

  pyigtl_peer.py server PORT   pyigtl serves on 127.0.0.1:PORT; once csnav connects it sends
                               TRANSFORM and STRING in header versions 1 and 2 (v2 with
                               metadata and a message id), then waits for csnav's TRANSFORM
                               "Reply" and prints it as one JSON line.
  pyigtl_peer.py client PORT   pyigtl connects to csnav at 127.0.0.1:PORT, prints every message
                               csnav sends (TargetV1, TargetV2, NoteV1, NoteV2) as JSON lines,
                               then sends a TRANSFORM "Reply".
"""
import json
import sys
import time

import numpy as np
import pyigtl


def matrix(k):
    m = np.eye(4, dtype=np.float32)
    c, s = np.cos(0.5), np.sin(0.5)
    m[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m[:3, 3] = [10.0 * k, -20.5, 300.25]
    return m


def describe(msg):
    out = {"device": msg.device_name, "type": msg._message_type, "header_version": msg.header_version,
           "message_id": msg.message_id, "metadata": msg.metadata, "timestamp": msg.timestamp}
    if msg._message_type == "TRANSFORM":
        out["matrix"] = np.asarray(msg.matrix, dtype=float).tolist()
    if msg._message_type == "STRING":
        out["string"] = msg.string
    return out


def wait(node, name, timeout=20):
    msg = node.wait_for_message(name, timeout=timeout)
    if msg is None:
        print(json.dumps({"error": f"no {name} within {timeout} s"}), flush=True)
        node.stop()
        sys.exit(2)
    return msg


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "server":
        node = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
        start = time.time()
        while not node.is_connected():
            if time.time() - start > 20:
                print(json.dumps({"error": "csnav never connected"}), flush=True)
                node.stop()
                sys.exit(2)
            time.sleep(0.01)
        v1 = pyigtl.TransformMessage(matrix(1), device_name="GuidewireV1", timestamp=1.5)
        v2 = pyigtl.TransformMessage(matrix(2), device_name="GuidewireV2", timestamp=1700000000.25)
        v2.header_version = 2
        v2.message_id = 42
        v2.metadata = {"CardiacPhase": "0.25", "Operator": "pyigtl"}
        s1 = pyigtl.StringMessage("hello from pyigtl", device_name="NoteV1")
        s2 = pyigtl.StringMessage("hello again, v2", device_name="NoteV2")
        s2.header_version = 2
        s2.metadata = {"Language": "en"}
        for m in (v1, v2, s1, s2):
            node.send_message(m, wait=True)
        print(json.dumps(describe(wait(node, "Reply"))), flush=True)
    else:
        node = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=port)
        for name in ("TargetV1", "TargetV2", "NoteV1", "NoteV2"):
            print(json.dumps(describe(wait(node, name))), flush=True)
        node.send_message(pyigtl.TransformMessage(matrix(3), device_name="Reply"), wait=True)
        time.sleep(0.5)
    node.stop()


if __name__ == "__main__":
    main()
