"""pyigtl's own send/receive rate, the peer row of csnav's OpenIGTLink benchmark.

A pyigtl server and client in one process on 127.0.0.1:PORT; the server sends TRANSFORM
messages for TOOLS tools as fast as pyigtl goes for SECONDS; the client drains them.
Prints one JSON line: messages sent and received per second.
"""
import json
import sys
import threading
import time

import numpy as np
import pyigtl


def main():
    port, tools, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
    client = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=port)
    start = time.time()
    while not server.is_connected():
        if time.time() - start > 10:
            print(json.dumps({"error": "no connection"}))
            return
        time.sleep(0.01)
    received = [0]
    done = threading.Event()

    def drain():
        while not done.is_set():
            received[0] += len(client.get_latest_messages())
            time.sleep(0.001)

    t = threading.Thread(target=drain)
    t.start()
    sent = 0
    m = np.eye(4, dtype=np.float32)
    start = time.time()
    while time.time() - start < seconds:
        for k in range(tools):
            m[0, 3] = sent
            server.send_message(pyigtl.TransformMessage(m, device_name=f"Tool{k}"), wait=False)
            sent += 1
        # pyigtl's outgoing queue holds 100: wait for it to drain rather than drop.
        server.send_message(pyigtl.TransformMessage(m, device_name="Sync"), wait=True)
        sent += 1
    elapsed = time.time() - start
    time.sleep(0.2)
    done.set()
    t.join()
    print(json.dumps({"sent_per_s": sent / elapsed, "received_latest_per_s": received[0] / elapsed}))
    client.stop()
    server.stop()


if __name__ == "__main__":
    main()
