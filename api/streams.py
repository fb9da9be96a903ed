"""The SSE routes: /events, /events/workers/{name}, /jobs/{id}/events, /jobs/{id}/logs/stream.

Each message is `id: <seq>`, `event: <type>`, `data: <event as JSON>` (log
streams: `id: <line>`, `event: log`, data `{"line", "stream", "data"}`).
Every stream opens with `retry: 2000` (reconnect after 2 s). A comment line
`: live` says the stream is registered and caught up; a `: ping` comment every
`sse_ping_s` keeps idle streams open. When the broker no longer holds events a
client asked for, it gets
`event: truncated` (data `{"since": N}`) before the events that remain.
Job and log streams end with `event: end`, data `{"status": ...}`.

Resume: `Last-Event-ID: N` (or `?last_event_id=N`) replays every event
after N the broker still holds, then goes live: no gap, no duplicate. A
log stream resumes after line N. N must be an integer from 0 to 2^63-1
(what the broker's sequence numbers hold), else the answer is 400 before
any stream starts.

A client that cannot keep up is resynced from the broker's replay (see
`api.hub`); a stream whose broker stops answering is closed, and the
client's EventSource reconnects with its Last-Event-ID.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing

import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from zjobs.api.context import ApiContext, context
from zjobs.api.errors import ApiError
from zjobs.api.feeds import (
    EventFeed,
    FeedItem,
    LogFeed,
    Truncated,
    _CaughtUp,
    job_filter,
    type_filter,
    worker_filter,
)
from zjobs.api.hub import Burst, Event
from zjobs.api.render import dumps
from zjobs.api.schemas import EventsQuery
from zjobs.broker.wire.errors import BrokerError
from zjobs.broker.wire.jobs import TERMINAL, TERMINAL_EVENTS
from zjobs.broker.wire.limits import SEQ_MAX

log = structlog.get_logger(__name__)

LIVE = ServerSentEvent(comment="live")
RETRY_MS = 2000
RETRY = ServerSentEvent(retry=RETRY_MS)  # how soon an EventSource reconnects after a drop
Messages = AsyncGenerator[ServerSentEvent | bytes, None]  # a stream's body: events, or chunks
SHUTDOWN_GRACE_S = 2.0


def _resume_point(request: Request) -> int | None:
    """Last-Event-ID header, else `?last_event_id=`; 400 unless it is a count that fits the
    broker's 64-bit sequence numbers (a larger one could not even be sent to it)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    text = raw.strip()
    # 19 digits hold SEQ_MAX; checked first, as int() refuses very long digit strings anyway
    if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= SEQ_MAX:
        return int(text)
    raise ApiError(400, f"Last-Event-ID must be an integer from 0 to {SEQ_MAX}, "
                        f"got {raw[:40]!r}")


def _types(request: Request) -> tuple[str, ...] | None:
    query = EventsQuery.model_validate({"types": request.query_params.get("types")})
    if not query.types:
        return None
    return tuple(t.strip() for t in query.types.split(",") if t.strip()) or None


_ENCODED: OrderedDict[int, bytes] = OrderedDict()
_ENCODED_KEEP = 50_000


def _encoded(event: Event) -> bytes:
    """The SSE bytes of a bus event, encoded once whatever the number of clients: the bytes
    are kept by seq for the next client that sends the same event."""
    seq = event["seq"]
    cached = _ENCODED.get(seq)
    if cached is None:
        cached = f"id: {seq}\r\nevent: {event['type']}\r\ndata: {dumps(event)}\r\n\r\n".encode()
        _ENCODED[seq] = cached
        if len(_ENCODED) > _ENCODED_KEEP:
            _ENCODED.popitem(last=False)
    return cached


def _encoded_burst(burst: Burst) -> bytes:
    """A live burst as one write. Streams with the same filter share the burst object, so
    the join is done once for all of them, not once per client."""
    if burst.memo is None:
        burst.memo = b"".join([_encoded(event) for event in burst.events])
    return burst.memo


def _truncated(item: Truncated) -> bytes:
    return ServerSentEvent(event="truncated", data=dumps({"since": item.since})).encode()


class _Chunks:
    """Collects replayed events; they go out as one write per `limit`, not one per event."""

    def __init__(self, limit: int = 500) -> None:
        self.parts: list[bytes] = []
        self.limit = limit

    def add(self, item: Event | Truncated) -> bool:
        """Add the item; True when the chunk should be written now."""
        self.parts.append(_truncated(item) if isinstance(item, Truncated) else _encoded(item))
        return len(self.parts) >= self.limit

    def take(self) -> bytes:
        chunk, self.parts = b"".join(self.parts), []
        return chunk


async def _flat(items: AsyncGenerator[FeedItem, None],
                ) -> AsyncGenerator[Event | Truncated | _CaughtUp, None]:
    """Feed items with live bursts taken apart, for streams that look at every event."""
    async with aclosing(items) as inner:
        async for item in inner:
            if isinstance(item, Burst):
                for event in item.events:
                    yield event
            else:
                yield item


def _end(status: str | None) -> ServerSentEvent:
    return ServerSentEvent(event="end", data=dumps({"status": status}))


def _respond(ctx: ApiContext, messages: Messages) -> Response:
    """At shutdown sse-starlette sets `ctx.shutdown`; the hub then closes every feed, so each
    stream ends with a complete response within the grace period."""
    return EventSourceResponse(_guarded(messages), ping=ctx.settings.sse_ping_s,
                               send_timeout=ctx.settings.sse_send_timeout_s,
                               shutdown_event=ctx.shutdown,
                               shutdown_grace_period=SHUTDOWN_GRACE_S)


async def _guarded(messages: Messages) -> Messages:
    """End the stream quietly when the broker stops answering; the client resumes later."""
    yield RETRY
    try:
        async with aclosing(messages):
            async for message in messages:
                yield message
    except (TimeoutError, BrokerError) as exc:
        log.warning("sse.closed", reason=str(exc))


# ---------------------------------------------------------------- bus events


async def _events(feed: EventFeed) -> Messages:
    live = False
    chunks = _Chunks()
    async with aclosing(feed.items()) as items:
        async for item in items:
            if isinstance(item, Burst):
                yield _encoded_burst(item)
            elif isinstance(item, _CaughtUp):
                if chunks.parts:
                    yield chunks.take()
                if not live:
                    live = True
                    yield LIVE
            elif chunks.add(item):
                yield chunks.take()


async def events(request: Request) -> Response:
    """Every event (`?types=job.,worker.` keeps those type prefixes)."""
    ctx = context(request)
    types = _types(request)
    feed = EventFeed(ctx.hub, type_filter(types), types, _resume_point(request))
    return _respond(ctx, _events(feed))


async def worker_events(request: Request) -> Response:
    """Events whose `worker` is the given name (joined/lost/left, its jobs, their logs)."""
    ctx = context(request)
    name = request.path_params["name"]
    feed = EventFeed(ctx.hub, worker_filter(name), None, _resume_point(request))
    return _respond(ctx, _events(feed))


# ---------------------------------------------------------------- one job


async def job_events(request: Request) -> Response:
    """The job's `job.*` events from its first one the broker holds, then live; `end` after
    the terminal one."""
    ctx = context(request)
    job_id = request.path_params["job_id"]
    resume = _resume_point(request)
    job = await ctx.client.get(job_id)  # 404 before the stream starts
    since = resume if resume is not None else ctx.hub.job_since(job_id)
    feed = EventFeed(ctx.hub, job_filter(job_id), ("job.",), since)
    return _respond(ctx, _job_events(feed, job["status"]))


async def _job_events(feed: EventFeed, status: str) -> Messages:
    """Ends after a replay if the job had ended before it (or ended during it), else at the
    first live terminal event."""
    ended = status in TERMINAL
    live = False
    async with aclosing(_flat(feed.items())) as items:
        async for item in items:
            if isinstance(item, _CaughtUp):
                if ended:
                    yield _end(status)
                    return
                if not live:
                    live = True
                    yield LIVE
                continue
            if isinstance(item, Truncated):
                yield _truncated(item)
                continue
            yield _encoded(item)
            if item["type"] in TERMINAL_EVENTS:
                status, ended = item["status"], True
                if live:
                    yield _end(status)
                    return


async def job_log_stream(request: Request) -> Response:
    """Every log line from the first (or after Last-Event-ID), then live; `end` when the job
    is terminal."""
    ctx = context(request)
    job_id = request.path_params["job_id"]
    resume = _resume_point(request)
    await ctx.client.get(job_id)  # 404 before the stream starts
    feed = LogFeed(ctx.hub, job_id, resume or 0)
    return _respond(ctx, _log_lines(feed))


async def _log_lines(feed: LogFeed) -> Messages:
    async with aclosing(feed.lines()) as lines:
        async for line in lines:
            yield ServerSentEvent(id=str(line["line"]), event="log", data=dumps(line))
    if feed.status is not None:
        yield _end(feed.status)
