"""Values no store can hold and numbers no field can, sent to a real broker and API, on both
stores (SQLite and PostgreSQL): each is a 4xx over REST (`ERR bad_request` over ZeroMQ), on a
connection that stays open, and the broker, its store and the API go on working afterwards.

Before these rules, on PostgreSQL a NUL in a queue name wedged every later commit, a NUL in a
schedule killed the broker at its first firing and a NUL in an idempotency key was `ERR
internal`; on both stores a 5,000-digit integer, a lone surrogate, a cron no date matches, an
`every_s` of 1e-300 or 1e30 and a schedule argument of 2^64 were 500s (the last two also broke
`GET /schedules` until removed).
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import msgpack
import pytest
import zmq

from tests.api.server import ApiServer, start_api
from tests.cluster import Cluster
from tests.postgres import started_postgres
from tests.waiting import wait_until
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.jobs import STATES

BIG = "9" * 5000  # an integer of 5,000 digits, as JSON text
SCHEDULE = '{"task": "noop", "every_s": 60}'

# (method, path, JSON body or None, the 4xx statuses it may get)
REFUSED: list[tuple[str, str, str | None, tuple[int, ...]]] = [
    # 1: a NUL where the store keeps text
    ("PATCH", "/queues/q%00x", '{"paused": true}', (422,)),
    ("POST", "/queues/q%00x/purge", None, (422,)),
    ("PUT", "/schedules/na%00me", SCHEDULE, (422,)),
    ("PUT", "/schedules/nul-task", '{"task": "no\\u0000op", "every_s": 60}', (422,)),
    ("PUT", "/schedules/nul-queue", '{"task": "noop", "queue": "q\\u0000", "every_s": 60}',
     (422,)),
    *[("POST", "/jobs", body, (422,)) for body in (
        '{"task": "noop", "queue": "q\\u0000x"}', '{"task": "no\\u0000op"}',
        '{"task": "noop", "idempotency_key": "k\\u0000"}', '{"task": "noop", "id": "i\\u0000"}',
        '{"task": "noop", "depends_on": ["d\\u0000"]}',
        '{"jobs": [{"task": "noop"}, {"task": "noop", "idempotency_key": "\\u0000"}]}')],
    ("GET", "/jobs/a%00b", None, (422,)), ("POST", "/jobs/a%00b/cancel", None, (422,)),
    ("GET", "/jobs?queue=q%00x", None, (422,)), ("GET", "/jobs?cursor=c%00", None, (422,)),
    ("GET", "/workers/w%00", None, (422,)), ("GET", "/schedules/s%00", None, (422,)),
    # 6: numbers no field can hold, a lone surrogate, schedules that cannot be
    *[("POST", "/jobs", f'{{"task": "noop", "{field}": {BIG}}}', (400,))
      for field in ("priority", "max_retries", "timeout_s", "retry_backoff_s", "run_at")],
    ("POST", "/jobs", f'{{"task": "noop", "args": [{BIG}]}}', (400,)),
    ("POST", "/jobs", f'{{"task": "noop", "kwargs": {{"n": -{BIG}}}}}', (400,)),
    ("POST", "/jobs", f'{{"jobs": [{{"task": "noop", "priority": {BIG}}}]}}', (400,)),
    ("PUT", "/schedules/big", f'{{"task": "noop", "every_s": {BIG}}}', (400,)),
    ("PATCH", "/queues/big", f'{{"rate_limit": {BIG}}}', (400,)),
    ("GET", "/jobs?limit=" + BIG, None, (422,)),
    ("GET", "/jobs/x/result?wait=" + BIG, None, (422,)),
    ("POST", "/jobs", '{"task": "noop", "args": ["\\udc80"]}', (400,)),
    ("POST", "/jobs", '{"task": "noop", "kwargs": {"\\udc80": 1}}', (400,)),
    ("POST", "/jobs", '{"task": "\\udc80"}', (400,)),
    ("PUT", "/schedules/lone", '{"task": "noop", "every_s": 60, "args": ["\\ud800"]}', (400,)),
    ("PUT", "/schedules/feb31", '{"task": "noop", "cron": "0 0 31 2 *"}', (422,)),
    ("PUT", "/schedules/tiny", '{"task": "noop", "every_s": 1e-300}', (422,)),
    ("PUT", "/schedules/fast", '{"task": "noop", "every_s": 0.001}', (422,)),
    ("PUT", "/schedules/huge", '{"task": "noop", "every_s": 1e30}', (422,)),
    ("PUT", "/schedules/arg", '{"task": "noop", "every_s": 60, "args": [18446744073709551616]}',
     (422,)),
    # 9: booleans for numbers, JSON that does not say so, a cursor no page gave
    ("POST", "/jobs", '{"task": "noop", "priority": true}', (422,)),
    ("POST", "/jobs", '{"task": "noop", "max_retries": false}', (422,)),
    ("PATCH", "/queues/bool", '{"rate_limit": true}', (422,)),
    ("PUT", "/schedules/bool", '{"task": "noop", "every_s": true}', (422,)),
    ("GET", "/jobs?cursor=garbage", None, (400,)),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def edges(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Cluster, ApiServer]]:
    cluster = Cluster(tmp_path_factory.mktemp(f"edges-{request.param}"))
    servers = started_postgres() if request.param == "postgres" else None
    try:
        if servers is not None:
            cluster.broker_args = ["--store", next(servers).url]
        cluster.start_broker()
        yield cluster, start_api(cluster)
    finally:
        cluster.close()
        if servers is not None:
            servers.close()


class Connection:
    """One keep-alive HTTP/1.1 connection, to see that a refused request does not close it."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.conn = h11.Connection(h11.CLIENT)
        self.host = f"{host}:{port}"

    def request(self, method: str, path: str, body: str | None) -> tuple[int, dict[str, Any]]:
        data = body.encode() if body is not None else b""
        headers = [("host", self.host), ("content-length", str(len(data)))]
        if body is not None:
            headers.append(("content-type", "application/json"))
        self.sock.sendall(self.conn.send(h11.Request(method=method, target=path,
                                                     headers=headers)))
        self.sock.sendall(self.conn.send(h11.Data(data=data)) + self.conn.send(h11.EndOfMessage()))
        status, chunks = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        assert self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE, \
            f"{method} {path}: the server closed the connection"
        self.conn.start_next_cycle()
        return status, json.loads(b"".join(chunks))

    def close(self) -> None:
        self.sock.close()


def test_every_hostile_value_is_a_4xx_on_one_connection_and_everything_goes_on(
        edges: tuple[Cluster, ApiServer]) -> None:
    cluster, api = edges
    connection = Connection(api.base_url)
    try:
        for method, path, body, statuses in REFUSED:
            status, answer = connection.request(method, path, body)
            assert status in statuses, (method, path, (body or "")[:80], status, answer)
            assert set(answer["error"]) == {"code", "message"}, answer
            assert "\n" not in answer["error"]["message"]
        for state in STATES:  # every state of the job model is a filter
            assert connection.request("GET", f"/jobs?status={state}", None)[0] == 200
        assert connection.request("GET", "/jobs?status=" + ",".join(STATES), None)[0] == 200
        every_twice = "&".join(f"status={state}" for state in (*STATES, *STATES))
        assert connection.request("GET", f"/jobs?{every_twice}", None)[0] == 200
        status, schedules = connection.request("GET", "/schedules", None)
        assert status == 200 and schedules["schedules"] == []  # none of them was kept
        status, job = connection.request("POST", "/jobs", '{"task": "noop", "queue": "after"}')
        assert status == 201 and job["queue"] == "after"
        assert connection.request("PATCH", "/queues/after", '{"paused": true}')[0] == 200
        assert connection.request("PUT", "/schedules/after", SCHEDULE)[0] == 200
        page = connection.request("GET", f"/jobs?cursor={job['id']}&limit=1", None)
        assert page[0] == 200
    finally:
        connection.close()
    assert cluster.broker.poll() is None and api.proc.poll() is None
    with cluster.client() as client:  # the store still commits
        assert client.get(client.submit("noop", queue="after-again"))["queue"] == "after-again"
        assert client.configure_queue("after-again", rate_limit=2)["rate_limit"] == 2


RAW_REFUSED = [
    (p.SUBMIT, {"task": "noop", "queue": "q\x00x"}), (p.SUBMIT, {"task": "no\x00op"}),
    (p.SUBMIT, {"task": "noop", "idempotency_key": "k\x00"}),
    (p.SUBMIT, {"task": "noop", "id": "i\x00"}),
    (p.SUBMIT, {"jobs": [{"task": "noop"}, {"task": "noop", "depends_on": ["d\x00"]}]}),
    (p.QUEUE, {"name": "q\x00x", "paused": True}), (p.PURGE, {"name": "q\x00x"}),
    (p.SCHEDULE, {"name": "s\x00", "task": "noop", "every_s": 60}),
    (p.SCHEDULE, {"name": "s", "task": "no\x00op", "every_s": 60}),
    (p.SCHEDULE, {"name": "s", "task": "noop", "cron": "0 0 31 2 *"}),
    (p.SCHEDULE, {"name": "s", "task": "noop", "every_s": 1e-300}),
    (p.SCHEDULE, {"name": "s", "task": "noop", "every_s": 1e30}),
    (p.GET, {"id": "a\x00"}), (p.WAIT, {"ids": ["a", "b\x00"], "timeout": 0}),
    (p.LIST, {"cursor": "garbage"}), (p.LIST, {"queue": "q\x00"}),
]


def test_a_raw_client_gets_bad_request_for_each(edges: tuple[Cluster, ApiServer]) -> None:
    cluster, _ = edges
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cluster.frontend)
    try:
        for command, body in [*RAW_REFUSED, (p.PING, {})]:
            sock.send_multipart([p.CLIENT_HEADER, command, b"rid", msgpack.packb(body)])
            assert sock.poll(10_000), f"no reply to {command!r} {body}"
            reply = p.decode_reply(sock.recv_multipart())
            if command == p.PING:
                assert reply.ok
            else:
                assert (reply.ok, reply.body["code"]) == (False, "bad_request"), (command, body)
    finally:
        sock.close(linger=0)
    assert cluster.broker.poll() is None


def test_schedules_kept_before_the_rules_do_not_stop_the_broker(tmp_path: Path) -> None:
    """A schedule stored by an older broker that fires into a refusal (here a priority the
    job rules refuse) is logged and skipped; the broker goes on serving. Before, the error
    left the loop and the broker exited at the first firing."""
    cluster = Cluster(tmp_path)
    try:
        cluster.start_broker()
        with cluster.client() as client:
            client.schedule("old", "noop", every_s=1, queue="old")
        cluster.kill(cluster.broker, signal.SIGTERM)
        db = sqlite3.connect(cluster.data_dir / "store" / "zjobs.db")
        db.execute("UPDATE schedules SET priority = ? WHERE name = 'old'", (2**40,))
        db.commit()
        db.close()
        cluster.start_broker()
        wait_until(lambda: "schedule.fire_failed" in cluster.log_text("broker")
                   or cluster.broker.poll() is not None, 10,
                   message="the old schedule to fail to fire")
        assert cluster.broker.poll() is None, "the broker died of the old schedule"
        with cluster.client() as client:
            assert client.ping()
            assert client.get(client.submit("noop", queue="old-after"))["queue"] == "old-after"
        assert cluster.broker.poll() is None
    finally:
        cluster.close()
