"""Batched events on a real broker: one PUB message per run of a type, read by raw SUB sockets
with prefix filters and by both clients' events(), each event once and in seq order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import Cluster
from tests.event_taps import Tap, replayed
from tests.waiting import wait_until
from zjobs import AsyncClient, Client
from zjobs.broker.wire import protocol as p

PREFIXES = ("", "job.", "job.succeeded", "log")


@pytest.fixture
def taps(cluster: Cluster) -> Iterator[dict[str, Tap]]:
    taps = {prefix: Tap(cluster.events, prefix) for prefix in PREFIXES}
    try:
        yield taps
    finally:
        for tap in taps.values():
            tap.close()


def test_prefix_subscribers_get_exactly_their_types_from_batches(cluster: Cluster,
                                                                 taps: dict[str, Tap]) -> None:
    cluster.start_worker("w1")
    client = cluster.client(timeout=30)

    def connected() -> bool:  # the slow joiner: a job that logs until every tap heard it
        client.wait(client.submit("chatty", 1), timeout=10)
        return all(tap.read() for tap in taps.values())

    wait_until(connected, 20, message="every SUB to receive events")
    since = client.ping()["seq"]  # every event after this is published to every tap
    ids = client.submit_many({"task": "noop", "args": [i]} for i in range(200))
    ids += client.submit_many({"task": "chatty", "args": [3]} for _ in range(5))
    client.wait_many(ids, timeout=60)
    until = client.ping()["seq"]
    truth = replayed(client, since, until)
    assert [e["seq"] for e in truth] == list(range(since + 1, until + 1))
    for prefix, tap in taps.items():
        wanted = [e for e in truth if e["type"].startswith(prefix)]
        wait_until(lambda tap=tap, last=wanted[-1]["seq"]: tap.read() and any(
            e["seq"] >= last for e in tap.events_after(since)), 20,
            message=f"the events of {prefix!r} to arrive")
        got = [e for e in tap.events_after(since) if e["seq"] <= until]
        assert got == wanted, prefix  # the same events, each once, in seq order
    forms = {len(frames) for frames in taps[""].messages}
    assert forms == {2, 3}  # single events and batches both went out
    submitted = [len(p.decode_events(frames)) for frames in taps["job."].messages
                 if frames[0] == b"job.submitted"]
    assert max(submitted) == 200  # one SUBMIT of 200 jobs: one turn, one message


def test_both_clients_events_read_batches_exactly_once(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client(timeout=30)
    since = client.ping()["seq"]
    jobs = [{"task": "noop", "args": [i]} for i in range(300)]
    seen_sync = _follow_in_a_thread(cluster, since, len(jobs))
    seen_async = asyncio.run(_follow_async(cluster, since, jobs))
    seen_sync.join(60)
    truth = [e for e in replayed(client, since, 1 << 62) if e["type"].startswith("job.")]
    succeeded = [e for e in truth if e["type"] == "job.succeeded"]
    assert len(succeeded) == len(jobs)
    last = succeeded[-1]["seq"]
    expected = [e for e in truth if e["seq"] <= last]
    assert seen_sync.events == expected
    assert seen_async == expected


class _Follower(threading.Thread):
    def __init__(self, cluster: Cluster, since: int, jobs: int) -> None:
        super().__init__(daemon=True)
        self.client = Client(cluster.frontend, timeout=30, events_endpoint=cluster.events)
        self.since, self.jobs = since, jobs
        self.events: list[dict[str, Any]] = []

    def run(self) -> None:
        with self.client:
            self.events = _until_succeeded(self.client.events(("job.",), self.since), self.jobs)


def _until_succeeded(events: Iterator[dict[str, Any]], jobs: int) -> list[dict[str, Any]]:
    got, ended = [], 0
    for event in events:
        got.append(event)
        ended += event["type"] == "job.succeeded"
        if ended == jobs:
            return got
    return got


def _follow_in_a_thread(cluster: Cluster, since: int, jobs: int) -> _Follower:
    follower = _Follower(cluster, since, jobs)
    follower.start()
    return follower


async def _follow_async(cluster: Cluster, since: int,
                        jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with AsyncClient(cluster.frontend, timeout=30,
                           events_endpoint=cluster.events) as client:
        got: list[dict[str, Any]] = []

        async def follow() -> None:
            ended = 0
            async for event in client.events(("job.",), since):
                got.append(event)
                ended += event["type"] == "job.succeeded"
                if ended == len(jobs):
                    return

        follower = asyncio.create_task(follow())
        await client.wait_many(await client.submit_many(jobs), timeout=60)
        await asyncio.wait_for(follower, 60)
        return got
