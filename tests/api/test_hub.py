"""The event hub and feeds on a real PUB/SUB pair, with a small fake of the broker's replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from zjobs.api.feeds import CAUGHT_UP, EventFeed, Truncated, type_filter
from zjobs.api.hub import EventHub
from zjobs.broker.wire import protocol as p


class FakeBroker:
    """The broker's event window and the EVENTS/PING commands, as the hub uses them."""

    def __init__(self, page: int = 4, first_kept: int = 1) -> None:
        self.events: list[dict[str, Any]] = []
        self.page = page
        self.first_kept = first_kept
        self.replays = 0

    def emit(self, type_: str = "job.progress", **fields: Any) -> dict[str, Any]:
        event = {"seq": len(self.events) + 1, "ts": time.time(), "type": type_, **fields}
        self.events.append(event)
        return event

    async def ping(self, timeout: float | None = None) -> dict[str, Any]:
        return {"seq": len(self.events)}

    async def replay(self, since: int, types: tuple[str, ...] | None = None,
                     limit: int = 10_000) -> dict[str, Any]:
        self.replays += 1
        held = [e for e in self.events if e["seq"] >= self.first_kept]
        picked, last, more = [], since, False
        for event in (e for e in held if e["seq"] > since):
            if len(picked) >= self.page:
                more = True
                break
            last = event["seq"]
            if types is None or event["type"].startswith(types):
                picked.append(event)
        return {"events": picked, "truncated": since + 1 < self.first_kept, "more": more,
                "last": last, "last_seq": len(self.events)}

    async def replay_pages(self, since: int,
                           types: tuple[str, ...] | None = None) -> AsyncIterator[dict[str, Any]]:
        more = True
        while more:
            page = await self.replay(since, types)
            yield page
            since, more = page["last"], page["more"]


def run(test: Callable[[zmq.asyncio.Socket, EventHub, FakeBroker], Awaitable[None]],
        *, queue_size: int = 100, broker: FakeBroker | None = None) -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        pub = ctx.socket(zmq.PUB)
        pub.linger = 0
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{port}")
        fake = broker or FakeBroker()
        hub = EventHub(fake, sub, queue_size)  # type: ignore[arg-type]
        hub.start()
        try:
            async with asyncio.timeout(20):
                while hub.last_seq is None:  # the hub has asked the broker where the bus is
                    await asyncio.sleep(0.01)
                await test(pub, hub, fake)
        finally:
            await hub.stop()
            pub.close(linger=0)
            ctx.term()

    asyncio.run(main())


async def publish(pub: zmq.asyncio.Socket, event: dict[str, Any]) -> None:
    await pub.send_multipart(p.encode_event(event))


async def publish_run(pub: zmq.asyncio.Socket, events: list[dict[str, Any]]) -> None:
    """One message for a run of events of one type, as the broker batches a turn's events."""
    bodies = [p.pack(event) for event in events]
    await pub.send_multipart(p.encode_event_run(events[0]["type"].encode(), bodies))


async def publish_until(pub: zmq.asyncio.Socket, fake: FakeBroker,
                        condition: Callable[[], bool]) -> None:
    """Keep the bus moving (a late SUB misses the first messages) until `condition()`."""
    while not condition():
        await publish(pub, fake.emit("broker.stats"))
        await asyncio.sleep(0.01)


def test_a_gap_on_the_bus_is_filled_from_the_replay() -> None:
    async def scenario(pub: zmq.asyncio.Socket, hub: EventHub, fake: FakeBroker) -> None:
        sub = hub.subscribe(lambda e: True)
        for i in range(10):
            event = fake.emit(job_id=f"j{i}")
            if i not in (3, 4, 5, 6, 7):  # lost on the wire
                await publish(pub, event)
        got: list[int] = []

        def collected() -> bool:
            got.extend(e["seq"] for e in sub.drain(100))
            return len(got) >= 10

        await publish_until(pub, fake, collected)
        assert got == list(range(1, len(got) + 1))
        assert fake.replays >= 1 and hub.stats.replayed >= 5
        assert hub.job_since("j4") == 4

    run(scenario)


def test_a_slow_subscriber_overflows_then_resyncs_without_loss() -> None:
    async def scenario(pub: zmq.asyncio.Socket, hub: EventHub, fake: FakeBroker) -> None:
        slow = EventFeed(hub, type_filter(("job.",)), ("job.",))
        items = slow.items()
        assert await anext(items) is CAUGHT_UP  # registered, live from now
        for i in range(12):
            await publish(pub, fake.emit("job.progress", job_id=f"j{i}"))
        await publish_until(pub, fake, lambda: (hub.last_seq or 0) >= 12)
        seqs = []
        while len(seqs) < 12:
            item = await anext(items)
            if isinstance(item, dict):
                seqs.append(item["seq"])
        assert seqs == [e["seq"] for e in fake.events if e["type"] == "job.progress"]
        assert hub.stats.dropped > 0  # the slow feed fell more than the ring of 3 behind
        await items.aclose()
        assert hub.subscribers == 0  # the closed feed unsubscribed

    run(scenario, queue_size=3)


def test_a_resume_from_before_the_window_says_truncated() -> None:
    async def scenario(pub: zmq.asyncio.Socket, hub: EventHub, fake: FakeBroker) -> None:
        for _ in range(10):
            fake.emit("job.progress")
        fake.first_kept = 6
        feed = EventFeed(hub, type_filter(None), None, since=2)
        items = feed.items()
        first = await anext(items)
        assert first == Truncated(2)
        replayed = [await anext(items) for _ in range(5)]
        assert [e["seq"] for e in replayed] == [6, 7, 8, 9, 10]
        assert await anext(items) is CAUGHT_UP
        await items.aclose()

    run(scenario, broker=FakeBroker(page=2))


def _collector(sub: Any, got: list[int], last: int) -> Callable[[], bool]:
    def collected() -> bool:
        got.extend(e["seq"] for e in sub.drain(100))
        return bool(got) and got[-1] >= last
    return collected


def test_batches_are_delivered_event_by_event_once_across_a_gap() -> None:
    async def scenario(pub: zmq.asyncio.Socket, hub: EventHub, fake: FakeBroker) -> None:
        await publish_until(pub, fake, lambda: hub.stats.received > 0)  # connected
        start, replayed = hub.last_seq or 0, hub.stats.replayed
        sub = hub.subscribe(lambda e: True)
        got: list[int] = []
        await publish_run(pub, [fake.emit("job.started", job_id=f"a{i}") for i in range(4)])
        await publish_run(pub, [fake.emit("log", job_id="a0") for _ in range(3)])
        await publish_until(pub, fake, _collector(sub, got, start + 7))
        assert hub.stats.replayed == replayed  # every event of each batch came over the bus
        [fake.emit("log", job_id="b") for _ in range(3)]  # lost on the wire
        await pub.send_multipart([b"log", p.EVENT_BATCH, b"\x93\x01"])  # malformed: counted
        await publish_run(pub, [fake.emit("job.succeeded", job_id=f"c{i}") for i in range(5)])
        await publish_run(pub, [fake.emit("job.started", job_id=f"d{i}") for i in range(2)])
        await publish_until(pub, fake, _collector(sub, got, fake.events[-1]["seq"]))
        assert got == list(range(start + 1, start + 1 + len(got)))  # each once, in order
        assert hub.stats.replayed > replayed and hub.stats.malformed == 1
        assert hub.job_since("a3") == start + 3  # its first event is start + 4

    run(scenario)
