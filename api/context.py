"""What every route shares: settings, the broker client, the event hub and the metrics.

The context is opened by the app's lifespan (ZeroMQ asyncio sockets belong
to the running loop) and closed by it: hub task stopped, SUB socket and
DEALER closed. `shutdown` is set when the server begins to stop (by the
server's signal handler, `stopping`, and by sse-starlette); open streams are
then ended cleanly (see `api.streams`) and held requests (a result waited
for) are answered 503 at once (`until_shutdown`), rather than cancelled with
a traceback when uvicorn's graceful period runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from zjobs.api.errors import ApiError
from zjobs.api.hub import DEFAULT_QUEUE_SIZE, EventHub
from zjobs.api.metrics import ApiMetrics
from zjobs.api.reachability import Reachability
from zjobs.broker.client.client import AsyncClient
from zjobs.broker.wire.settings import default

T = TypeVar("T")
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(slots=True)
class Settings:
    """The API's settings; a default with a setting is the settings table's
    (broker/wire/settings.py)."""

    frontend: str = default("frontend")
    events: str = default("events")
    token: str | None = default("api_token")
    curve: Any = None
    max_body: int = default("max_message")  # a body, like a message, up to --max-message
    sse_ping_s: float = default("sse_ping")
    sse_send_timeout_s: float = 30.0
    broker_timeout_s: float = default("api_broker_timeout")
    body_timeout_s: float = default("api_body_timeout")
    health_timeout_s: float = 1.0
    reachability_every_s: float = 1.0
    queue_size: int = DEFAULT_QUEUE_SIZE
    static_dir: Path = STATIC_DIR


class ApiContext:
    """Created inside the running loop (the lifespan): its sockets and events belong to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = AsyncClient(settings.frontend, curve=settings.curve,
                                  timeout=settings.broker_timeout_s,
                                  events_endpoint=settings.events)
        self.hub = EventHub(self.client, self.client.subscriber(settings.events),
                            settings.queue_size)
        self.metrics = ApiMetrics(self.hub)
        self.hub.add_observer(self.metrics.observe)
        self.shutdown = anyio.Event()
        self.reachability = Reachability()
        self._tasks: list[asyncio.Task] = []
        self._loop = asyncio.get_running_loop()

    def start(self) -> None:
        self.hub.start()
        loop = self._loop
        self._tasks = [
            loop.create_task(self._end_streams_at_shutdown()),
            loop.create_task(self.reachability.watch(
                self.client, self.settings.reachability_every_s, self.settings.health_timeout_s)),
        ]

    def stopping(self) -> None:
        """The server begins to stop (called from its signal handler)."""
        self._loop.call_soon_threadsafe(self.shutdown.set)

    async def until_shutdown(self, work: Awaitable[T]) -> T:
        """`work`'s result, or 503 if the server begins to stop first (`work` is cancelled)."""
        job = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.shutdown.wait())
        try:
            await asyncio.wait((job, stop), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            job.cancel()
            raise
        finally:
            stop.cancel()
        if job.done():
            return job.result()
        job.cancel()
        await asyncio.wait((job,))  # its cancellation has run: nothing is left behind
        raise ApiError(503, "the API is shutting down; ask again once it is back")

    async def _end_streams_at_shutdown(self) -> None:
        await self.shutdown.wait()
        self.hub.close_subscribers()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.hub.stop()
        await self.client.close()


def context(request: Request) -> ApiContext:
    return request.app.state.ctx
