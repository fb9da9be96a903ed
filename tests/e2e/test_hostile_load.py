"""One message, or one peer, must never stall the broker; replies nobody reads stay bounded.

Each test sends its attack from a raw DEALER to a real broker process while a second
client PINGs it throughout, then checks the broker's peak RSS (VmHWM) and that it still
serves a normal submit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bench.faults import BOMB_KINDS, Pinger, decode_bomb, rss_mib
from tests.cluster import Cluster, raw_dealer
from tests.waiting import wait_until
from zjobs import AsyncClient, Client
from zjobs.broker.server import MAX_IN_FLIGHT, PEER_HWM
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import BrokerError

MIB = 1024 * 1024
MAX_MESSAGE = 16 * MIB
PING_LIMIT_S = 1.5


def peak_rss_mib(cluster: Cluster) -> float:
    """The broker's peak resident set (VmHWM), in MiB."""
    return rss_mib(cluster.broker.pid, "VmHWM")


def pinging(cluster: Cluster) -> Pinger:
    """Another client PINGing the broker throughout, already answered once."""
    pinger = Pinger(cluster.frontend).started()
    assert pinger.pings > 0, pinger.failure
    return pinger


def slowest_ping(pinger: Pinger) -> float:
    slowest = pinger.stop()
    assert pinger.failure is None, f"a PING failed: {pinger.failure!r}"
    return slowest


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Cluster]:
    """A broker of its own per test, so that its peak RSS is this test's alone."""
    cluster = Cluster(tmp_path, broker_args=["--max-message", str(MAX_MESSAGE)])
    try:
        cluster.start_broker()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def dealer(broker: Cluster) -> Iterator[zmq.Socket]:
    with raw_dealer(broker.frontend) as sock:
        yield sock


def still_serves(cluster: Cluster) -> None:
    with cluster.client() as client:
        job_id = client.submit("noop", queue="after-the-attack")
        assert client.get(job_id)["status"] == "queued"
        assert client.ping()["pong"] is True


# ---------------------------------------------------------------- decode bombs

RID = b"bomb"


@pytest.mark.parametrize("bomb", BOMB_KINDS)
def test_a_decode_bomb_is_refused_at_once_and_costs_little(broker: Cluster, dealer: zmq.Socket,
                                                           bomb: str) -> None:
    body = decode_bomb(bomb, MAX_MESSAGE)
    assert MAX_MESSAGE - 4096 <= len(body) + 64 <= MAX_MESSAGE  # 16 MiB, inside the limit
    pinger = pinging(broker)
    for _ in range(3):
        dealer.send_multipart([p.CLIENT_HEADER, p.SUBMIT, RID, body])
    replies = []
    for _ in range(3):
        assert dealer.poll(60_000), "no reply to the bomb"
        replies.append(p.decode_reply(dealer.recv_multipart()))
    slowest = slowest_ping(pinger)
    for reply in replies:
        assert (reply.ok, reply.body["code"]) == (False, "too_large"), reply.body
        assert "values" in reply.body["message"] or "items" in reply.body["message"]
    assert slowest < PING_LIMIT_S, f"a PING took {slowest:.2f} s during the bomb"
    assert peak_rss_mib(broker) < 500
    with broker.client() as client:
        assert client.stats()["jobs"].get("queued", 0) == 0  # nothing of the bomb was kept
    still_serves(broker)


# ---------------------------------------------------------------- replies nobody reads

UNREAD_LISTS = 5000
PEER_QUEUE = 1000  # the raw DEALER's own receive queue (ZeroMQ's default), set explicitly
FAT_JOBS = 20
FAT_ARG = "x" * 15_000  # 20 jobs of 15 kB: a LIST {limit: 1000} answers 300 kB


@pytest.mark.timeout(400)
def test_unread_replies_are_dropped_and_counted_not_kept(broker: Cluster,
                                                         dealer: zmq.Socket) -> None:
    with broker.client() as client:
        client.submit_many({"task": "noop", "args": [FAT_ARG], "queue": "fat"}
                           for _ in range(FAT_JOBS))
    dealer.rcvhwm = PEER_QUEUE
    pinger = pinging(broker)
    request = [p.CLIENT_HEADER, p.LIST, b"unread", p.pack({"limit": 1000})]
    for _ in range(UNREAD_LISTS):  # a blocking send: at the broker's own pace
        dealer.send_multipart(request)
    # Every LIST is answered or dropped: what the peer's queue, the broker's queue to it
    # and the kernel's buffers between them hold was delivered, the rest dropped.
    delivered_at_most = PEER_QUEUE + PEER_HWM + 200
    with broker.client() as client:
        wait_until(lambda: dropped(client) >= UNREAD_LISTS - delivered_at_most, 300,
                   interval=0.5, message="the broker to drop the replies nobody reads")
    slowest = slowest_ping(pinger)
    assert slowest < PING_LIMIT_S, f"a PING took {slowest:.2f} s during the flood"
    assert peak_rss_mib(broker) < 600
    still_serves(broker)


def dropped(client: Client) -> int:
    return client.stats()["counters"]["dropped_replies"]


# ---------------------------------------------------------------- requests in flight


def test_a_peer_over_its_requests_in_flight_is_told_busy(broker: Cluster,
                                                         dealer: zmq.Socket) -> None:
    with broker.client() as client:
        job_id = client.submit("noop", queue="nobody-serves-this")
    wait = p.pack({"id": job_id, "timeout": 120})
    for index in range(MAX_IN_FLIGHT):
        dealer.send_multipart([p.CLIENT_HEADER, p.WAIT, index.to_bytes(4, "big"), wait])
    # a peer's requests are taken in order: when this one comes, all the others are held
    dealer.send_multipart([p.CLIENT_HEADER, p.WAIT, b"one-more", wait])
    assert dealer.poll(30_000)
    reply = p.decode_reply(dealer.recv_multipart())
    assert reply.request_id == b"one-more"
    assert (reply.ok, reply.body["code"]) == (False, "busy")
    assert str(MAX_IN_FLIGHT) in reply.body["message"]
    with broker.client() as client:  # another peer is not concerned
        assert client.ping()["pong"] is True
        assert client.stats()["counters"]["busy"] == 1
        client.cancel(job_id)  # every held WAIT is answered: the peer may ask again
    answered = set()
    while len(answered) < MAX_IN_FLIGHT and dealer.poll(10_000):
        reply = p.decode_reply(dealer.recv_multipart())
        assert reply.ok and reply.body["status"] == "cancelled"
        answered.add(reply.request_id)
    assert len(answered) == MAX_IN_FLIGHT
    dealer.send_multipart([p.CLIENT_HEADER, p.WAIT, b"again", wait])
    assert dealer.poll(10_000)
    assert p.decode_reply(dealer.recv_multipart()).ok
    still_serves(broker)


def test_the_python_client_raises_busy_as_a_broker_error(broker: Cluster) -> None:
    with broker.client() as client:
        job_id = client.submit("noop", queue="nobody-serves-this")

    async def many_polls() -> BaseException | None:
        async with AsyncClient(broker.frontend, timeout=10) as client:
            # distinct timeouts under the 30 s slice: one WAIT request each, none coalesced
            tasks = [asyncio.ensure_future(client.poll(job_id, timeout=10 + index / 1000))
                     for index in range(MAX_IN_FLIGHT + 50)]
            done, _ = await asyncio.wait(tasks, timeout=20,
                                         return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                task.cancel()
            return next((t.exception() for t in done if t.exception() is not None), None)

    failure = asyncio.run(many_polls())
    assert isinstance(failure, BrokerError) and failure.code == "busy", failure
    assert "in flight" in failure.message
    still_serves(broker)
