"""`WAIT {ids, each: true}` answered in parts, and the asyncio client's `result()`s sent as one.

A real broker and worker; the wire is read from a raw DEALER, so the parts themselves are
checked, not only what the client makes of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zmq

from tests.cluster import Cluster
from zjobs import AsyncClient, BrokerError
from zjobs.broker.wire import protocol as p


def _raw_dealer(cluster: Cluster) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cluster.frontend)
    return sock


def _next_reply(sock: zmq.Socket, timeout_s: float = 20.0) -> p.ClientReply:
    assert sock.poll(timeout_s * 1000), "no reply from the broker"
    return p.decode_reply(sock.recv_multipart())


def test_a_wait_for_each_job_is_answered_as_each_ends(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1", "--concurrency", "4")
    started, release = tmp_path / "started", tmp_path / "release"
    with cluster.client() as client:
        slow = client.submit("touch_then_wait", str(started), str(release))
        fast = client.submit_many({"task": "add", "args": [i, 1]} for i in range(3))
        sock = _raw_dealer(cluster)
        try:
            sock.send_multipart(p.encode_request(p.WAIT, b"r1", {
                "ids": [slow, *fast, "no-such-job"], "timeout": 30, "each": True}))
            seen: dict[str, dict] = {}
            missing: list[str] = []
            while set(fast) - set(seen):  # the fast jobs come while the slow one still runs
                reply = _next_reply(sock)
                assert reply.ok and reply.request_id == b"r1" and reply.body["more"] is True
                missing += reply.body.get("missing", [])
                for job in reply.body["jobs"]:
                    assert job["id"] not in seen  # each job once
                    seen[job["id"]] = job
            assert missing == ["no-such-job"]
            assert slow not in seen and client.get(slow)["status"] in ("queued", "running")
            assert [seen[i]["result"] for i in fast] == [1, 2, 3]
            release.write_text("go")
            last = _next_reply(sock)
            assert last.body["more"] is False
            assert [(j["id"], j["status"]) for j in last.body["jobs"]] == [(slow, "succeeded")]
        finally:
            sock.close()


def test_a_wait_for_each_job_ends_at_its_timeout_with_the_rest_as_they_are(
        cluster: Cluster) -> None:
    with cluster.client() as client:
        waiting = client.submit("noop", 1, queue="nobody-serves-this")
        sock = _raw_dealer(cluster)
        try:
            sock.send_multipart(p.encode_request(p.WAIT, b"r2", {
                "ids": [waiting], "timeout": 0.3, "each": True}))
            reply = _next_reply(sock)
            assert reply.body["more"] is False
            assert [(j["id"], j["status"]) for j in reply.body["jobs"]] == [(waiting, "queued")]
        finally:
            sock.close()


def test_async_results_of_one_tick_share_a_wait_and_each_resolves_on_its_own(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1", "--concurrency", "4")
    started, release = tmp_path / "started", tmp_path / "release"

    async def scenario() -> None:
        async with AsyncClient(cluster.frontend, timeout=20) as client:
            slow = await client.submit("touch_then_wait", str(started), str(release))
            fast = await client.submit_many([{"task": "add", "args": [i, i]} for i in range(200)])
            waits = [asyncio.ensure_future(client.result(i)) for i in [slow, *fast]]
            missing = asyncio.ensure_future(client.result("no-such-job"))
            assert await asyncio.gather(*waits[1:]) == [2 * i for i in range(200)]
            with pytest.raises(BrokerError) as error:
                await missing
            assert error.value.code == "not_found"
            assert not waits[0].done()  # the slow job's own result is still to come
            release.write_text("go")
            assert await asyncio.wait_for(waits[0], 20) == "go"
            # 202 result() calls made one request: the broker saw a single WAIT from us
            assert client._outstanding.next_id() <= (4).to_bytes(8, "big")

    asyncio.run(scenario())


def test_async_submits_of_one_tick_go_in_parts_and_each_gets_its_own_job(
        cluster: Cluster) -> None:
    """600 single submits gathered in one tick: sent in parts as the tick fills them (the
    broker starts on the first while the client makes the rest), each answered with its own
    job, every job stored and run once."""
    cluster.start_worker("w1", "--concurrency", "4")

    async def scenario() -> None:
        async with AsyncClient(cluster.frontend, timeout=20) as client:
            ids = await asyncio.gather(*(client.submit("add", i, 1) for i in range(600)))
            assert len(set(ids)) == 600
            # three parts of EARLY (256, 256, 88): three SUBMITs, not one and not 600
            assert client._outstanding.next_id() == (4).to_bytes(8, "big")
            results = await asyncio.gather(*(client.result(i) for i in ids))
            assert results == [i + 1 for i in range(600)]
            jobs = await client.wait_many(ids)
            assert {job["attempts"] for job in jobs} == {1}

    asyncio.run(scenario())
