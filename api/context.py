"""What every route shares: settings, the broker client, the event hub and the metrics.

The context is opened by the app's lifespan (ZeroMQ asyncio sockets belong
to the running loop) and closed by it: hub task stopped, SUB socket and
DEALER closed. `shutdown` is set by sse-starlette when the server begins to
stop; open streams are then ended cleanly (see `api.streams`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request

from broker import AsyncClient

from .hub import DEFAULT_QUEUE_SIZE, EventHub
from .metrics import ApiMetrics
from .reachability import Reachability

MIB = 1024 * 1024
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(slots=True)
class Settings:
    frontend: str = "tcp://127.0.0.1:5555"
    events: str = "tcp://127.0.0.1:5557"
    token: str | None = None
    curve: Any = None
    max_body: int = 16 * MIB
    sse_ping_s: float = 15.0
    sse_send_timeout_s: float = 30.0
    broker_timeout_s: float = 5.0
    body_timeout_s: float = 30.0
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

    def start(self) -> None:
        self.hub.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._end_streams_at_shutdown()),
            loop.create_task(self.reachability.watch(
                self.client, self.settings.reachability_every_s, self.settings.health_timeout_s)),
        ]

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
