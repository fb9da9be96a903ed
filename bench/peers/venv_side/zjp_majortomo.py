"""majortomo (MDP/0.2 over pyzmq) broker, worker and producer (peer virtualenv only).

- ``python zjp_majortomo.py broker``: a ``majortomo.broker.Broker`` bound to a
  random loopback port, printed on stdout. Logging stays at WARNING: the
  package's own CLI logs every message at INFO, which would be measuring
  the log handler.
- ``python zjp_majortomo.py worker URL``: a ``majortomo.Worker``.
- the producer keeps up to ``WINDOW`` MDP client requests in flight on one
  DEALER. ``majortomo.Client`` allows one outstanding request per socket,
  which would measure a round trip, not the broker; the broker itself queues
  requests from one client like any other.

Jobs and results are msgpack bodies shaped like the relay's and zjobs'.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from typing import Any

import msgpack
import zmq
from majortomo import Worker, WorkerRequestsIterator
from majortomo import protocol as mdp
from majortomo.broker import Broker
from zjp_common import check_sum, emit, wait_for_workers

SERVICE = b"zjp"
WINDOW = 1000
RECV_TIMEOUT_MS = 120_000


class RandomPortBroker(Broker):
    """A Broker that binds a free loopback port and reports it on stdout."""

    def bind(self) -> None:
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.rcvtimeo = int(self._heartbeat_interval * 1000)
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        self._bind_url = f"tcp://127.0.0.1:{port}"
        sys.stdout.write(f"{self._bind_url}\n")
        sys.stdout.flush()


def run_broker() -> None:
    broker = RandomPortBroker()
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    broker.run()


def _answer(job: dict[str, Any]) -> int:
    return os.getpid() if job["task"] == "ident" else job["args"][0]


def run_worker(url: str) -> None:
    requests = WorkerRequestsIterator(Worker(url, SERVICE))
    requests.stop_on_signal()
    for frames in requests:
        job = msgpack.unpackb(frames[0])
        result = {"id": job["id"], "ok": True, "result": _answer(job)}
        requests.send_reply_final([msgpack.packb(result)])


def _request(sock: zmq.Socket, task: str, args: list[Any]) -> None:
    body = msgpack.packb({"id": str(uuid.uuid4()), "task": task, "args": args, "kwargs": {}})
    sock.send_multipart([b"", mdp.CLIENT_HEADER, mdp.REQUEST, SERVICE, body])


def _reply(sock: zmq.Socket) -> Any:
    empty, header, command, body = sock.recv_multipart()
    if header != mdp.CLIENT_HEADER or command != mdp.FINAL:
        raise RuntimeError(f"unexpected reply {header!r} {command!r}")
    return msgpack.unpackb(body)["result"]


def _pump(sock: zmq.Socket, task: str, n_jobs: int) -> list[Any]:
    values: list[Any] = []
    sent = 0
    while len(values) < n_jobs:
        while sent < n_jobs and sent - len(values) < WINDOW:
            _request(sock, task, [] if task == "ident" else [sent])
            sent += 1
        values.append(_reply(sock))
    return values


def drive(n_jobs: int, n_workers: int, url: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    sock.connect(url)
    try:
        seen = wait_for_workers(lambda k: _pump(sock, "ident", k), n_workers)
        start = time.perf_counter()
        values = _pump(sock, "noop", n_jobs)
        seconds = time.perf_counter() - start
    finally:
        sock.close(linger=0)
        ctx.term()
    check_sum(values, n_jobs)
    emit(seconds, n_jobs, seen, window=WINDOW)


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "broker":
        run_broker()
    elif role == "worker":
        run_worker(rest[0])
    else:
        raise SystemExit(f"unknown role {role!r}")
