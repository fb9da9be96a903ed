"""The event hub: one SUB socket on the broker's events, fanned out to every SSE client.

One task reads the SUB socket (poll, then receive without blocking: a
pending `recv()` is never cancelled) and tracks `last_seq`. PUB drops for a
slow or late subscriber by design, so on a gap (an event whose seq is not
`last_seq + 1`) the hub first fetches the missing range from the broker's
replay window (EVENTS, page by page) and delivers it, then the newer
events: subscribers always see contiguous seqs, each once.

Each subscriber gets a bounded queue and a filter. A subscriber whose queue
is full is marked *overflowed*: the hub stops filling its queue (so it never
slows the others) and counts the events it skips as dropped; once the
subscriber has drained its queue it receives `RESYNC` and fills the hole
itself from the broker (its stream replays from the last event it sent), so
nothing is lost silently. The same `RESYNC` goes to every subscriber when
the hub cannot fill a gap (broker unreachable, or the gap older than the
broker's window).

The hub relies on seq never going backwards (DESIGN.md: it continues across
broker restarts on the same store): an API whose broker is restarted on a
new, empty store must be restarted too.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import structlog
import zmq
import zmq.asyncio

from broker import AsyncClient, BrokerError
from broker import protocol as p

log = structlog.get_logger(__name__)

Event = dict[str, Any]
Filter = Callable[[Event], bool]
Observer = Callable[[Event], None]

DEFAULT_QUEUE_SIZE = 100_000  # references to shared event dicts: 100 clients x 100k = ~80 MB at worst
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


class Subscription:
    """One SSE client's view of the hub: a filter and a bounded queue."""

    __slots__ = ("wants", "queue", "overflowed", "closed")

    def __init__(self, wants: Filter, maxsize: int) -> None:
        self.wants = wants
        self.queue: asyncio.Queue[Event | _Marker] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, event: Event) -> bool:
        """Queue `event`; False if it was dropped because this subscriber is behind."""
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True

    def resync(self) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(RESYNC)
        except asyncio.QueueFull:
            self.overflowed = True

    def close(self) -> None:
        self.closed = True
        try:
            self.queue.put_nowait(CLOSED)  # wakes a reader waiting on an empty queue
        except asyncio.QueueFull:
            pass  # a full queue is not waited on: `next` sees `closed` first

    def drain(self, limit: int) -> list[Event | _Marker]:
        """What is queued already (up to `limit`), without waiting: a burst, sent as one write."""
        items: list[Event | _Marker] = []
        while len(items) < limit:
            try:
                items.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    async def next(self) -> Event | _Marker:
        """The next event; RESYNC once an overflowed queue has been drained; CLOSED at
        shutdown."""
        if self.closed:
            return CLOSED
        if self.overflowed and self.queue.empty():
            self.overflowed = False
            return RESYNC
        return await self.queue.get()


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
        self._observers: list[Observer] = []
        self._job_first_seq: OrderedDict[str, int] = OrderedDict()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ subscribers

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, wants: Filter) -> Subscription:
        sub = Subscription(wants, self.queue_size)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

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
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._sock.close(linger=0)

    async def run(self) -> None:
        await self._start_seq()
        while True:
            await self._sock.poll()
            while True:
                try:
                    frames = await self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
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
        try:
            event = p.decode_event(frames)
        except p.ProtocolError:
            self.stats.malformed += 1
            return
        self.stats.received += 1
        seq = event["seq"]
        if self.last_seq is None:
            self.last_seq = seq - 1
        if seq > self.last_seq + 1:
            await self._fill(seq)
        if seq <= self.last_seq:
            self.stats.duplicates += 1
            return
        self._deliver(event)

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
        while True:
            page = await self.client.replay(since)
            if page["truncated"]:
                self._lost()  # before the replayed events, so streams see the hole
            for event in page["events"]:
                if self.last_seq is None or event["seq"] > self.last_seq:
                    self.stats.replayed += 1
                    self._deliver(event)
            since = max(since, page["last"])
            if not page["more"]:
                return

    def _lost(self) -> None:
        """Events are missing that the hub cannot deliver: every subscriber resyncs itself."""
        self.stats.gaps += 1
        for sub in self._subs:
            sub.resync()

    # ------------------------------------------------------------ delivery

    def _deliver(self, event: Event) -> None:
        self.last_seq = event["seq"]
        self._index(event)
        for observer in self._observers:
            try:
                observer(event)
            except Exception as exc:  # an observer bug must not stop the bus
                log.error("hub.observer_failed", error=repr(exc), type=event.get("type"))
        for sub in self._subs:
            if sub.wants(event) and not sub.offer(event):
                self.stats.dropped += 1

    def _index(self, event: Event) -> None:
        job_id = event.get("job_id")
        if job_id is None or job_id in self._job_first_seq:
            return
        self._job_first_seq[job_id] = event["seq"]
        if len(self._job_first_seq) > JOB_INDEX_SIZE:
            self._job_first_seq.popitem(last=False)
