"""Numbers no job or command can hold, sent straight to a real broker's frontend over ZeroMQ.

Each is refused with `ERR bad_request` naming the field; the broker stays up,
nothing is created, and other clients' waits still end at their timeouts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from tests.cluster import Cluster, raw_dealer
from zjobs.broker.wire import protocol as p


@pytest.fixture(scope="module")
def hostile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("hostile"))
    try:
        cluster.start_broker()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def dealer(hostile_cluster: Cluster) -> Iterator[zmq.Socket]:
    with raw_dealer(hostile_cluster.frontend) as sock:
        yield sock


def ask(sock: zmq.Socket, command: bytes, body: dict[str, Any]) -> p.ClientReply:
    """One raw request and its reply (msgpack packs NaN, inf and 64-bit ints as they are)."""
    sock.send_multipart([p.CLIENT_HEADER, command, b"rid", msgpack.packb(body)])
    assert sock.poll(10_000), f"no reply to {command!r} {body}"
    return p.decode_reply(sock.recv_multipart())


def job_total(cluster: Cluster) -> int:
    with cluster.client() as client:
        return sum(client.stats()["jobs"].values())


BAD_JOBS = [
    ("max_retries", 2**64 - 1), ("max_retries", -1), ("priority", 2**63),
    ("priority", -(2**63)), ("timeout_s", math.nan), ("timeout_s", math.inf), ("timeout_s", 1e9),
    ("timeout_s", 1e300), ("retry_backoff_s", -1.0), ("retry_backoff_s", math.nan),
    ("run_at", math.inf), ("run_at", math.nan), ("run_at", 1e20), ("run_at", 2**64 - 1),
    ("run_at", -5), ("run_at", "99999-01-01"), ("queue", "q" * 201), ("id", ""),
    ("idempotency_key", "k" * 501), ("task", "t" * 501),
    ("wait", math.nan), ("wait", math.inf), ("wait", -1.0), ("wait", "soon"),
]


@pytest.mark.parametrize(("field", "value"), BAD_JOBS, ids=[f"{f}={v!r:.20}" for f, v in BAD_JOBS])
def test_submit_with_an_out_of_range_field_is_refused(hostile_cluster: Cluster, dealer: zmq.Socket,
                                                      field: str, value: Any) -> None:
    before = job_total(hostile_cluster)
    reply = ask(dealer, p.SUBMIT, {"task": "noop", field: value})
    assert (reply.ok, reply.body["code"]) == (False, "bad_request")
    assert field in reply.body["message"] and "\n" not in reply.body["message"]
    assert ask(dealer, p.PING, {}).ok
    assert job_total(hostile_cluster) == before
    assert hostile_cluster.broker.poll() is None


def test_a_batch_with_one_bad_job_creates_none(hostile_cluster: Cluster,
                                               dealer: zmq.Socket) -> None:
    before = job_total(hostile_cluster)
    reply = ask(dealer, p.SUBMIT, {"jobs": [{"task": "noop"}, {"task": "noop",
                                                               "priority": 2**40}]})
    assert (reply.ok, reply.body["code"]) == (False, "bad_request")
    assert "job 1" in reply.body["message"]
    assert job_total(hostile_cluster) == before


BAD_COMMANDS = [
    (p.WAIT, {"id": "x", "timeout": math.nan}, "timeout"),
    (p.WAIT, {"id": "x", "timeout": math.inf}, "timeout"),
    (p.WAIT, {"ids": ["x"], "timeout": -1.0}, "timeout"),
    (p.LIST, {"limit": -1}, "limit"),
    (p.LIST, {"limit": 0}, "limit"),
    (p.LIST, {"limit": math.nan}, "limit"),
    (p.LOGS, {"id": "x", "since": -1}, "since"),
    (p.LOGS, {"id": "x", "limit": math.inf}, "limit"),
    (p.EVENTS, {"since": -(2**63)}, "since"),
    (p.EVENTS, {"since": math.nan}, "since"),
]


@pytest.mark.parametrize(("command", "body", "field"), BAD_COMMANDS,
                         ids=[f"{c.decode()}-{b}" for c, b, _ in BAD_COMMANDS])
def test_a_command_with_a_bad_number_is_refused(dealer: zmq.Socket, command: bytes,
                                                body: dict[str, Any], field: str) -> None:
    reply = ask(dealer, command, body)
    assert (reply.ok, reply.body["code"]) == (False, "bad_request")
    assert field in reply.body["message"]


def test_a_nan_wait_leaves_other_waits_timing_out(hostile_cluster: Cluster,
                                                  dealer: zmq.Socket) -> None:
    with hostile_cluster.client() as client:
        job_id = client.submit("noop", queue="nobody-serves-this")
        reply = ask(dealer, p.WAIT, {"id": job_id, "timeout": math.nan})
        assert (reply.ok, reply.body["code"]) == (False, "bad_request")
        started = time.monotonic()
        job = client.poll(job_id, timeout=0.5)
        assert job["status"] == "queued"
        assert time.monotonic() - started < 3.0, "the wait did not end at its timeout"


def test_a_batch_refused_for_a_taken_id_leaves_nothing_behind(hostile_cluster: Cluster,
                                                               dealer: zmq.Socket) -> None:
    assert ask(dealer, p.SUBMIT, {"task": "noop", "id": "taken", "queue": "q"}).ok
    before = job_total(hostile_cluster)
    for batch in ([{"task": "noop"}, {"task": "noop", "id": "taken"}],
                  [{"task": "noop", "id": "twice"}, {"task": "noop", "id": "twice"}]):
        reply = ask(dealer, p.SUBMIT, {"jobs": batch})
        assert (reply.ok, reply.body["code"]) == (False, "conflict")
        assert job_total(hostile_cluster) == before
