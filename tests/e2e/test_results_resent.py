"""A result the broker read but never committed (it was killed first) is sent again after
the READY that follows: a real worker and its sync slot, against a raw ZJP broker socket
that reads the RESULT, goes away, and comes back on the same port knowing nothing.

Against the real broker the same case is a race (the kill must land between its read and
its commit); `zjobs bench faults` counts it ("broker SIGKILL x3": executed twice).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs.broker.wire import protocol as p


def _bind(ctx: zmq.Context, endpoint: str) -> zmq.Socket | None:
    """A ROUTER bound to `endpoint`, or None while the port is still taken: the socket that
    held it releases it when ZeroMQ's I/O thread gets to it (later on a busy machine)."""
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close()  # else the context never ends
        if exc.errno != zmq.EADDRINUSE:
            raise
        return None
    return sock


def _messages(sock: zmq.Socket, timeout_s: float) -> Iterator[tuple[bytes, p.WorkerMessage]]:
    """Every worker message on `sock` until `timeout_s` passes (then the test fails)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            identity, *frames = sock.recv_multipart()
            yield identity, p.decode_worker(frames)
    pytest.fail(f"no such message within {timeout_s} s")


def _slot_ready(sock: zmq.Socket, answer: bytes | None) -> bytes:
    """The identity of the slot's READY; every other message is answered `answer` (None:
    a HEARTBEAT, as a live broker does; DISCONNECT: as a restarted one does to a stranger)."""
    told: set[bytes] = set()
    for identity, msg in _messages(sock, 20):
        if msg.command == p.READY:
            if msg.bodies[0]["name"] == "solo:0":
                return identity
            sock.send_multipart([identity, *p.encode_worker(p.HEARTBEAT)])
        elif answer is None:
            sock.send_multipart([identity, *p.encode_worker(p.HEARTBEAT)])
        elif identity not in told:
            told.add(identity)
            sock.send_multipart([identity, *p.encode_worker(answer)])
    raise AssertionError("unreachable")


def _result_from(sock: zmq.Socket, slot: bytes) -> dict[str, Any]:
    for identity, msg in _messages(sock, 20):
        if identity == slot and msg.command == p.RESULT:
            return msg.bodies[0]
        sock.send_multipart([identity, *p.encode_worker(p.HEARTBEAT)])
    raise AssertionError("unreachable")


def test_a_result_the_broker_never_committed_is_sent_again_after_its_restart(
        bare_cluster: Cluster) -> None:
    ctx = zmq.Context()
    first = wait_until(lambda: _bind(ctx, bare_cluster.backend), 20, message="the port")
    try:
        bare_cluster.start_worker("solo", "--concurrency", "1", wait=False)
        slot = _slot_ready(first, answer=None)
        job = ("job-1", "task", "add", 1, None, "default", p.pack({"args": [2, 2], "kwargs": {}}))
        first.send_multipart([slot, *p.encode_worker_packed(
            p.JOB, p.encode_jobs(True, [job], 1 << 20))])
        read = _result_from(first, slot)
        assert (read["job_id"], read["attempt"], read["ok"]) == ("job-1", 1, True)
        first.close()  # killed before its commit: the result is lost with it
        second = wait_until(lambda: _bind(ctx, bare_cluster.backend), 20,
                            message="the port released by the first socket")
        try:
            slot = _slot_ready(second, answer=p.DISCONNECT)
            again = _result_from(second, slot)
            assert again == read
        finally:
            second.close()
    finally:
        first.close()
        ctx.term()
