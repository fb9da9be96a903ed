"""A broker turn within its budget: what one turn takes from its sockets, and from one peer.

A real `BrokerServer` (store, engine, ROUTER sockets) on inproc endpoints, driven one turn
at a time: with inproc, a message is in the broker's queue once `send` returns, so what a
turn could take is known exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from zjobs.broker.server import DRAIN_BUDGET_S, PEER_SHARE, BrokerConfig, BrokerServer
from zjobs.broker.wire import protocol as p

_names = itertools.count()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BrokerServer]:
    name = next(_names)
    config = BrokerConfig(frontend=f"inproc://front-{name}", backend=f"inproc://back-{name}",
                          events=f"inproc://events-{name}", data_dir=str(tmp_path / "store"))
    broker = BrokerServer(config)
    try:
        yield broker
    finally:
        for sock in _sockets.pop(id(broker), []):  # the context ends only once they are closed
            sock.close(linger=0)
        broker.close()


_sockets: dict[int, list[zmq.Socket]] = {}


def dealer(server: BrokerServer, endpoint: str | None = None) -> zmq.Socket:
    """A DEALER in the broker's own context (inproc), closed with the broker."""
    sock = server.ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = 100_000
    sock.connect(endpoint or server.endpoints()["frontend"])
    _sockets.setdefault(id(server), []).append(sock)
    return sock


def replies(sock: zmq.Socket) -> list[p.ClientReply]:
    """Every reply the socket has been sent so far."""
    found = []
    while sock.poll(20):
        found.append(p.decode_reply(sock.recv_multipart()))
    return found


def answered(socks: list[zmq.Socket]) -> int:
    """How many replies these sockets have been sent so far, all read."""
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    count = 0
    while ready := poller.poll(20):  # inproc: a reply is queued once the turn has sent it
        for sock, _ in ready:
            sock.recv_multipart()
            count += 1
    return count


def turn(server: BrokerServer) -> None:
    server.turn({server.frontend: zmq.POLLIN, server.backend: zmq.POLLIN})


def test_one_client_puts_at_most_its_share_into_a_turn(server: BrokerServer) -> None:
    flooder, other = dealer(server), dealer(server)
    for index in range(2000):
        flooder.send_multipart(p.encode_request(p.PING, index.to_bytes(4, "big"), {}))
    other.send_multipart(p.encode_request(p.PING, b"other", {}))
    turn(server)
    assert [r.request_id for r in replies(other)] == [b"other"]  # fair queueing: served at once
    answered = len(replies(flooder))
    assert 0 < answered <= PEER_SHARE
    while answered < 2000:  # the rest, a share a turn, nothing lost
        turn(server)
        got = len(replies(flooder))
        assert 0 < got <= PEER_SHARE
        answered += got
    assert answered == 2000


def test_a_turn_stops_draining_past_its_time_budget(server: BrokerServer) -> None:
    submitter = dealer(server)
    fat = [{"task": "noop", "args": ["x" * 20_000], "queue": "fat"} for _ in range(50)]
    submitter.send_multipart(p.encode_request(p.SUBMIT, b"fat", {"jobs": fat}))
    turn(server)
    assert replies(submitter)[0].ok
    peers = [dealer(server) for _ in range(300)]  # many clients: no share runs out
    for sock in peers:
        sock.send_multipart(p.encode_request(p.LIST, b"list", {"limit": 1000}))
    turn(server)
    lists = answered(peers)
    # each LIST of 50 fat jobs takes far more than DRAIN_BUDGET_S / 300
    assert 0 < lists < 300, f"{lists} LISTs in one turn of {DRAIN_BUDGET_S} s"
    for _ in range(300):
        if lists == 300:
            break
        turn(server)
        lists += answered(peers)
    assert lists == 300


def test_a_result_past_the_decode_limit_fails_its_job(server: BrokerServer) -> None:
    worker = dealer(server, server.endpoints()["backend"])
    client = dealer(server)
    worker.send_multipart(p.encode_worker(p.READY, {"name": "w", "queues": ["default"],
                                                    "capacity": 1}))
    client.send_multipart(p.encode_request(p.SUBMIT, b"job", {"task": "noop"}))
    turn(server)
    [submitted] = replies(client)
    job_id = submitted.body["id"]
    sent = [p.decode_broker(worker.recv_multipart()) for _ in range(2) if worker.poll(1000)]
    [job] = [job for m in sent if m.command == p.JOB for job in p.decode_jobs(m.bodies)]
    assert job["id"] == job_id
    values = server.limits.max_values + 1  # small ints: 1 byte each, far under the size limit
    result = {"job_id": job_id, "attempt": job["attempt"], "ok": True, "result": [0] * values}
    worker.send_multipart(p.encode_worker(p.RESULT, result))
    turn(server)
    client.send_multipart(p.encode_request(p.GET, b"get", {"id": job_id}))
    turn(server)
    [reply] = replies(client)
    assert reply.body["status"] == "failed"
    assert reply.body["error"]["type"] == "ResultTooLarge"
    assert str(server.limits.max_values) in reply.body["error"]["message"]
