"""A raw ZJP worker with a prefetch window, in a process of its own (a test can SIGKILL it).

    python -m tests.raw_worker BACKEND NAME PREFETCH LOG

It registers (`capacity` 1, `prefetch` PREFETCH, task `noop`), heartbeats, and starts
nothing by itself: it only holds what it is sent. Each message from the broker becomes one
JSON line in LOG: `{"command": "JOB", "jobs": [[id, attempt], ...]}` or
`{"command": "CANCEL", "job_id": id}`. A line `start ID ATTEMPT` on its stdin sends STARTED.
"""

from __future__ import annotations

import json
import sys
import time

import zmq

from zjobs.broker.wire import protocol as p


def main(backend: str, name: str, prefetch: int, log_path: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(backend)
    sock.send_multipart(p.encode_worker(p.READY, {
        "name": name, "queues": ["default"], "capacity": 1, "prefetch": prefetch,
        "compact": True, "tasks": ["noop"], "heartbeat_interval_s": 0.25}))
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(sys.stdin, zmq.POLLIN)
    with open(log_path, "a", buffering=1) as log:
        last_beat = time.monotonic()
        while True:
            ready = dict(poller.poll(100))
            if sock in ready:
                msg = p.decode_broker(sock.recv_multipart())
                if msg.command == p.JOB:
                    jobs = [[job["id"], job["attempt"]] for job in p.decode_jobs(msg.bodies)]
                    log.write(json.dumps({"command": "JOB", "jobs": jobs}) + "\n")
                elif msg.command == p.CANCEL_JOB:
                    for body in msg.bodies:
                        log.write(json.dumps({"command": "CANCEL", "job_id": body["job_id"]})
                                  + "\n")
            if sys.stdin.fileno() in ready or sys.stdin in ready:
                line = sys.stdin.readline().split()
                if not line:
                    return
                sock.send_multipart(p.encode_worker(p.STARTED, {
                    "job_id": line[1], "attempt": int(line[2])}))
            if time.monotonic() - last_beat > 0.1:
                sock.send_multipart(p.encode_worker(p.HEARTBEAT))
                last_beat = time.monotonic()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
