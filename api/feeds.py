"""Feeds: what one SSE client receives, replayed from the broker then live from the hub.

A feed subscribes to the hub *before* it asks the broker for history, so
every event is either in the replay or in its live queue (or both, and then
the seq, or the log line number, drops the duplicate): no gap, no
duplicate. On `RESYNC` (its queue overflowed, or the hub lost events) a
feed replays from the last thing it sent.

- `EventFeed`: bus events filtered by a predicate; items are event dicts
  (replayed), `Burst`s (live: every wanted event the hub had, shared with the
  other feeds of the same filter), `Truncated` (the broker no longer holds
  events the client asked for) and `CAUGHT_UP` (a replay is done; what
  follows is live).
- `LogFeed`: one job's log lines from line 1 (or a resume point), then live,
  until the job is terminal.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from zjobs.api.hub import CLOSED, RESYNC, Burst, Event, EventHub, Filter, _Marker
from zjobs.broker.client.client import AsyncClient
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import TERMINAL_EVENTS


@dataclass(slots=True, frozen=True)
class Truncated:
    """Events after `since` were already gone from the broker's window."""

    since: int


class _CaughtUp:
    def __repr__(self) -> str:
        return "CAUGHT_UP"


CAUGHT_UP = _CaughtUp()


BURST = 1000  # live events a stream writes at most in one chunk

FeedItem = Event | Burst | Truncated | _CaughtUp


class EventFeed:
    """Events wanted by `wants`, from `since` (None: from now), without gap or duplicate."""

    def __init__(self, hub: EventHub, wants: Filter, types: tuple[str, ...] | None = None,
                 since: int | None = None) -> None:
        self.hub = hub
        self.client: AsyncClient = hub.client
        self.wants = wants
        self.types = types
        self.last = since

    async def items(self) -> AsyncGenerator[FeedItem, None]:
        sub = self.hub.subscribe(self.wants)
        try:
            if self.last is None:
                self.last = self.hub.last_seq
            else:
                async with aclosing(self._replay()) as replayed:
                    async for item in replayed:
                        yield item
            yield CAUGHT_UP
            while True:
                burst = await sub.next_burst(BURST)
                if isinstance(burst, Burst):
                    if (unseen := self._unseen(burst)).events:
                        yield unseen
                    continue
                if burst[0] is CLOSED:
                    return
                if burst[0] is RESYNC:
                    async with aclosing(self._replay()) as replayed:
                        async for item in replayed:
                            yield item
                    yield CAUGHT_UP
        finally:
            self.hub.unsubscribe(sub)

    def _unseen(self, burst: Burst) -> Burst:
        """The burst without what a replay already sent: the shared burst itself when all of
        it is new (the usual case), so its SSE bytes are shared with the other streams."""
        events, last = burst.events, self.last
        if last is None or events[0]["seq"] > last:
            self.last = events[-1]["seq"]
            return burst
        self.last = max(last, events[-1]["seq"])
        return Burst([event for event in events if event["seq"] > last])

    async def _replay(self) -> AsyncGenerator[FeedItem, None]:
        if self.last is None:  # lost our place before any event: say so, go on from now
            self.last = (await self.client.ping())["seq"]
            yield Truncated(self.last)
            return
        first_page = True
        async for page in self.client.replay_pages(self.last, self.types):
            if first_page and page["truncated"]:
                yield Truncated(self.last)
            first_page = False
            self.hub.stats.replayed += len(page["events"])
            for event in page["events"]:
                if event["seq"] > self.last and self.wants(event):
                    self.last = event["seq"]
                    yield event
            self.last = max(self.last, page["last"])


@functools.lru_cache(maxsize=256)
def type_filter(prefixes: tuple[str, ...] | None) -> Filter:
    """One function per distinct set of prefixes: streams with equal filters share the hub's
    drain cache."""
    if not prefixes:
        return lambda event: True
    return lambda event: event["type"].startswith(prefixes)


def worker_filter(name: str) -> Filter:
    return lambda event: event.get("worker") == name


def job_filter(job_id: str) -> Filter:
    return lambda event: event.get("job_id") == job_id and event["type"].startswith("job.")


def job_log_filter(job_id: str) -> Filter:
    return lambda event: event.get("job_id") == job_id and (
        event["type"] == "log" or event["type"] in TERMINAL_EVENTS)


class LogFeed:
    """One job's log lines, each once and in order, then its final status.

    Items are log line dicts (`line`, `stream`, `data`); `status` holds the
    job's terminal status once `lines()` is exhausted (None if the stream was
    closed first, at shutdown).
    """

    def __init__(self, hub: EventHub, job_id: str, since_line: int = 0) -> None:
        self.hub = hub
        self.client: AsyncClient = hub.client
        self.job_id = job_id
        self.last = since_line
        self.status: str | None = None

    async def lines(self) -> AsyncGenerator[dict[str, Any], None]:
        sub = self.hub.subscribe(job_log_filter(self.job_id))
        try:
            async with aclosing(self._snapshot()) as snapshot:
                async for line in snapshot:
                    yield line
            while self.status is None:
                event = await sub.next()
                if event is CLOSED:
                    return
                # a _Marker here is RESYNC: a hole, filled from the broker's store
                if not isinstance(event, _Marker) and event["type"] != "log":
                    self.status = event["status"]  # terminal: every line came before it
                    break
                if isinstance(event, _Marker) or event["line"] > self.last + 1:
                    async with aclosing(self._snapshot()) as snapshot:
                        async for line in snapshot:
                            yield line
                if not isinstance(event, _Marker) and event["line"] > self.last:
                    self.last = event["line"]
                    yield _line(event)
        finally:
            self.hub.unsubscribe(sub)

    async def _snapshot(self) -> AsyncGenerator[dict[str, Any], None]:
        """Lines after `last` the broker has stored; sets `status` if the job has ended."""
        while True:
            page = await self.client.logs_page(self.job_id, since=self.last,
                                               limit=lim.STREAM_PAGE_DEFAULT)
            for line in page["lines"]:
                if line["line"] > self.last:
                    self.last = line["line"]
                    yield _line(line)
            if len(page["lines"]) < lim.STREAM_PAGE_DEFAULT:
                if page["done"]:
                    self.status = page["status"]
                return


def _line(record: dict[str, Any]) -> dict[str, Any]:
    return {"line": record["line"], "stream": record["stream"], "data": record["data"]}
