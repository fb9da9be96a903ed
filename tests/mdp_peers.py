"""A majortomo Worker as its own process, unchanged, for the Majordomo tests.

    python -m tests.mdp_peers URL SERVICE [HOLD_PATH]

Each request gets a PARTIAL `working`, then a FINAL `echo` + the request's frames. With
HOLD_PATH it writes that file when a request arrives and never answers (a worker that
dies mid-request, once the test kills it). A DISCONNECT from the broker (a restarted
bridge) is followed by a new connection, as a Majordomo worker's main loop does.
"""

from __future__ import annotations

import sys
import time

from majortomo import Worker, error


def main(url: str, service: str, hold: str | None = None) -> None:
    worker = Worker(url, service.encode(), heartbeat_interval=0.2, heartbeat_timeout=3.0)
    worker.connect()
    while True:
        try:
            client, request = worker.wait_for_request()
        except error.Disconnected:
            worker.connect(reconnect=True)
            continue
        if hold:
            with open(hold, "w") as marker:
                marker.write("got it")
            while True:
                time.sleep(3600)  # noqa - held on purpose until the test kills this process
        worker.send_reply_partial(client, [b"working"])
        worker.send_reply_final(client, [b"echo", *request])


if __name__ == "__main__":
    main(*sys.argv[1:])
