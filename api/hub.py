"""The event hub: one SUB socket on the broker's events, fanned out to every SSE client.

One task reads the SUB socket (poll, then receive without blocking: a
pending `recv()` is never cancelled) and tracks `last_seq`. PUB drops for a
slow or late subscriber by design, so on a gap (an event whose seq is not
`last_seq + 1`) the hub first fetches the missing range from the broker's
replay window (EVENTS, page by page) and delivers it, then the newer
events: subscribers always see contiguous seqs, each once. A message may
carry a run of events of one type (docs/protocol.md 7.1); their seqs follow
each other, so only a message's first event can open a gap.

All subscribers read one shared ring of the last `queue_size` events, each
with its own cursor and filter, so delivering an event costs one append,
whatever the number of clients (per-client queues cost 100 puts per event
for 100 clients, and made the API the bottleneck of the SSE benchmark). A
subscriber that falls more than the ring behind never slows the others: it
gets `RESYNC` and fills the hole itself from the broker (its stream replays
from the last event it sent), and the skipped events count as dropped, so
nothing is lost silently. The same `RESYNC` goes to every subscriber when
the hub cannot fill a gap (broker unreachable, or the gap older than the
broker's window).

The hub relies on seq never going backwards (the protocol: it continues across
broker restarts on the same store): an API whose broker is restarted on a
new, empty store must be restarted too.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import structlog
import zmq
import zmq.asyncio

from zjobs.broker.client.client import AsyncClient
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import BrokerError
from zjobs.broker.wire.sockets import cancel_and_wait, received

log = structlog.get_logger(__name__)

Event = dict[str, Any]
Filter = Callable[[Event], bool]
Observer = Callable[[Event], None]

# How far a client may fall behind before it resyncs from the broker. The ring holds
# references to shared event dicts: ~1 MB per 100k events.
DEFAULT_QUEUE_SIZE = 100_000
JOB_INDEX_SIZE = 50_000
START_PING_S = 1.0


class _Marker:
    """A queue item that is not an event."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


RESYNC = _Marker("RESYNC")  # fill a hole from the broker before going on
CLOSED = _Marker("CLOSED")  # the server is shutting down: end the stream


@dataclass(slots=True)
class HubStats:
    received: int = 0      # events read from the SUB socket
    replayed: int = 0      # events fetched from the broker's replay (hub and streams)
    dropped: int = 0       # events not queued for an overflowed subscriber (resynced later)
    duplicates: int = 0    # live events already delivered by a replay
    gaps: int = 0          # gaps the hub could not fill (its subscribers resynced)
    malformed: int = 0     # undecodable event messages

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Burst:
    """A slice of the ring that one drain read: the events a filter wanted, in seq order.

    Subscribers with the same filter and cursor get the same `Burst` object in
    a burst of events, so whatever a stream derives from it (its SSE bytes)
    is made once and shared by all of them (`memo`).
    """

    __slots__ = ("events", "memo")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.memo: Any = None

    def __len__(self) -> int:
        return len(self.events)


class Subscription:
    """One SSE client's view of the hub: a filter and a cursor into the hub's shared ring.

    Delivery costs the hub one append per event, whatever the number of
    clients; each client filters its own slice when it reads. A client whose
    cursor falls behind the start of the ring has lost events: it gets
    `RESYNC` and fills the hole from the broker.
    """

    __slots__ = ("wants", "hub", "cursor", "closed", "_resync", "_wake")

    def __init__(self, wants: Filter, hub: EventHub) -> None:
        self.wants = wants
        self.hub = hub
        self.cursor = hub.ring_end
        self.closed = False
        self._resync = False
        self._wake = asyncio.Event()

    def resync(self) -> None:
        self._resync = True
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def _marker(self) -> _Marker | None:
        if self.closed:
            return CLOSED
        hub = self.hub
        if self.cursor < hub.ring_start:  # fell behind: what it missed comes from the broker
            hub.stats.dropped += hub.ring_start - self.cursor
            self.cursor = hub.ring_end
            self._resync = True
        if self._resync:
            self._resync = False
            return RESYNC
        return None

    def drain(self, limit: int) -> Sequence[Event | _Marker]:
        """What is there already (up to `limit`), without waiting."""
        burst = self.take(limit)
        return burst if isinstance(burst, list) else list(burst.events)

    def take(self, limit: int) -> Burst | list[_Marker]:
        """What is there already (up to `limit` events) as a shared `Burst`, or `[marker]`."""
        marker = self._marker()
        if marker is not None:
            return [marker]
        hub = self.hub
        key = (self.wants, self.cursor, hub.ring_end, limit)
        hit = hub.drain_cache.get(key)
        if hit is None:  # in a burst, every client with this filter reads the same slice
            events, cursor = self._scan(limit)
            hit = hub.drain_cache[key] = (Burst(events), cursor)
            if len(hub.drain_cache) > 512:
                hub.drain_cache.clear()
        burst, self.cursor = hit
        return burst

    def _scan(self, limit: int) -> tuple[list[Event], int]:
        hub, wants = self.hub, self.wants
        items: list[Event] = []
        ring, end, cursor = hub.ring, hub.ring_end, self.cursor
        index = cursor - hub.ring_start
        while cursor < end and len(items) < limit:
            event = ring[index]
            index += 1
            cursor += 1
            if wants(event):
                items.append(event)
        return items, cursor

    async def next(self) -> Event | _Marker:
        """The next wanted event; RESYNC after a hole; CLOSED at shutdown."""
        while True:
            items = self.drain(1)
            if items:
                return items[0]
            await self._wait()

    async def next_burst(self, limit: int) -> Burst | list[_Marker]:
        """Every wanted event there is (up to `limit`), waiting for at least one; or
        `[RESYNC]` after a hole, `[CLOSED]` at shutdown."""
        while True:
            burst = self.take(limit)
            if burst:
                return burst
            await self._wait()

    async def _wait(self) -> None:
        self._wake.clear()
        self.hub.waiting.add(self)
        await self._wake.wait()


class EventHub:
    """Reads the bus once and hands contiguous events to many subscribers."""

    def __init__(self, client: AsyncClient, sock: zmq.asyncio.Socket,
                 queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.client = client
        self._sock = sock
        self.queue_size = queue_size
        self.last_seq: int | None = None
        self.stats = HubStats()
        self._subs: set[Subscription] = set()
        self.ring: deque[Event] = deque()  # the last `queue_size` events, shared by all clients
        self.ring_start = 0                # absolute index of ring[0]
        self.waiting: set[Subscription] = set()
        self.drain_cache: dict[tuple, tuple[Burst, int]] = {}
        self._observers: list[Observer] = []
        self._job_first_seq: OrderedDict[str, int] = OrderedDict()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ subscribers

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def ring_end(self) -> int:
        return self.ring_start + len(self.ring)

    def subscribe(self, wants: Filter) -> Subscription:
        sub = Subscription(wants, self)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self.waiting.discard(sub)

    def close_subscribers(self) -> None:
        """Shutdown: every stream ends cleanly instead of being cut."""
        for sub in self._subs:
            sub.close()

    def add_observer(self, observer: Observer) -> None:
        """`observer(event)` sees every event once, in seq order (metrics)."""
        self._observers.append(observer)

    def job_since(self, job_id: str) -> int:
        """A seq to replay a job's events from: just before its first event, or 0 if unknown."""
        first = self._job_first_seq.get(job_id)
        return first - 1 if first is not None else 0

    # ------------------------------------------------------------ task

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="event-hub")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self._sock.close(linger=0)

    async def run(self) -> None:
        await self._start_seq()
        async for frames in received(self._sock):
            await self._receive(frames)

    async def _start_seq(self) -> None:
        """Start from the broker's current seq, so a first gap is seen and filled."""
        try:
            pong = await self.client.ping(timeout=START_PING_S)
        except (TimeoutError, BrokerError):
            return  # broker not up yet: start at the first event received
        if self.last_seq is None:
            self.last_seq = pong["seq"]

    async def _receive(self, frames: list[bytes]) -> None:
        """One PUB message: a run of events with consecutive seqs (one, or a ZJB1 batch)."""
        try:
            events = p.decode_events(frames)
        except p.ProtocolError:
            self.stats.malformed += 1
            return
        self.stats.received += len(events)
        first = events[0]["seq"]
        if self.last_seq is None:
            self.last_seq = first - 1
        if first > self.last_seq + 1:
            await self._fill(first)
        seen = self.last_seq + 1 - first  # how many of the run a replay delivered already
        if seen > 0:
            self.stats.duplicates += min(seen, len(events))
            events = events[seen:]
        self._deliver(events)

    # ------------------------------------------------------------ gaps

    async def _fill(self, seq: int) -> None:
        """Deliver what the broker still holds after `last_seq`, then go on from `seq`."""
        since = self.last_seq or 0
        try:
            await self._replay_into_subscribers(since)
        except (TimeoutError, BrokerError) as exc:
            log.warning("hub.gap_unfilled", since=since, seq=seq, error=str(exc))
            self._lost()
        if self.last_seq is None or self.last_seq < seq - 1:
            self.last_seq = seq - 1

    async def _replay_into_subscribers(self, since: int) -> None:
        async for page in self.client.replay_pages(since):
            if page["truncated"]:
                self._lost()  # before the replayed events, so streams see the hole
            last = self.last_seq
            fresh = [e for e in page["events"] if last is None or e["seq"] > last]
            self.stats.replayed += len(fresh)
            self._deliver(fresh)

    def _lost(self) -> None:
        """Events are missing that the hub cannot deliver: every subscriber resyncs itself."""
        self.stats.gaps += 1
        for sub in self._subs:
            sub.resync()

    # ------------------------------------------------------------ delivery

    def _deliver(self, events: list[Event]) -> None:
        """Hand `events`, the next after `last_seq` and in seq order, to every subscriber."""
        if not events:
            return
        self.last_seq = events[-1]["seq"]
        index, observers = self._index, self._observers
        for event in events:
            index(event)
            for observer in observers:
                try:
                    observer(event)
                except Exception as exc:  # an observer bug must not stop the bus
                    log.error("hub.observer_failed", error=repr(exc), type=event.get("type"))
        ring = self.ring
        ring.extend(events)
        excess = len(ring) - self.queue_size
        if excess > 0:
            for _ in range(excess):
                ring.popleft()
            self.ring_start += excess
        if self.waiting:
            for sub in self.waiting:
                sub._wake.set()
            self.waiting.clear()

    def _index(self, event: Event) -> None:
        job_id = event.get("job_id")
        if job_id is None or job_id in self._job_first_seq:
            return
        self._job_first_seq[job_id] = event["seq"]
        if len(self._job_first_seq) > JOB_INDEX_SIZE:
            self._job_first_seq.popitem(last=False)
