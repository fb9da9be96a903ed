"""Majordomo workers as their own processes, for the Majordomo tests.

    python -m tests.mdp_peers URL SERVICE [HOLD_PATH [stall]]

A majortomo Worker, unchanged: each request gets a PARTIAL `working`, then a FINAL `echo` +
the request's frames. With HOLD_PATH it writes the first request's frames to that file
(space-separated) and never answers nor heartbeats again (a worker that hangs, or dies
mid-request once the test kills it). A DISCONNECT from the broker (a restarted broker) is
followed by a new connection, as a Majordomo worker's main loop does.

With `stall`, a raw MDP/0.2 worker instead: it writes the first request's frames to
HOLD_PATH and never answers it, but heartbeats on (a worker busy with a long request, alive).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import zmq
from majortomo import Worker, error

HEADER, READY, REQUEST, HEARTBEAT = b"MDPW02", b"\x01", b"\x02", b"\x05"


def echo(url: str, service: str, hold: str | None = None) -> None:
    worker = Worker(url, service.encode(), heartbeat_interval=0.2, heartbeat_timeout=3.0)
    worker.connect()
    while True:
        try:
            client, request = worker.wait_for_request()
        except error.Disconnected:
            worker.connect(reconnect=True)
            continue
        if hold:
            Path(hold).write_bytes(b" ".join(request))
            while True:
                time.sleep(3600)  # noqa - held on purpose until the test kills this process
        worker.send_reply_partial(client, [b"working"])
        worker.send_reply_final(client, [b"echo", *request])


def stall(url: str, service: str, hold: str) -> None:
    sock = zmq.Context().socket(zmq.DEALER)
    sock.connect(url)
    sock.send_multipart([b"", HEADER, READY, service.encode()])
    while True:
        if sock.poll(200):
            frames = sock.recv_multipart()  # ["", header, REQUEST, client, "", body...]
            if frames[2:3] == [REQUEST] and not Path(hold).exists():
                Path(hold).write_bytes(b" ".join(frames[5:]))
        sock.send_multipart([b"", HEADER, HEARTBEAT])


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[3:] == ["stall"]:
        stall(*args[:3])
    else:
        echo(*args)
