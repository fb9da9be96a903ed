"""Whether the broker answers, and since when: what /health and the dashboard report.

A background task pings the broker every `interval_s`; /health records its
own pings too. The dashboard shows "Live" only while the broker answers and
"broker unreachable since HH:MM:SS" otherwise, so a green badge never sits
over a dead broker just because the API's own event stream is still open.

While the broker is known to be unreachable (what /health says), `BrokerGate`
answers every route that needs it with 503 at once, instead of letting each
request wait out the broker timeout. /health, /metrics (which reports the
broker down), /meta (which needs no broker), the dashboard page, its static files
and the API docs stay served: they are what a person looks at during an outage.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from zjobs.api.errors import error_response
from zjobs.broker.client.client import AsyncClient
from zjobs.broker.wire.errors import BrokerError

log = structlog.get_logger(__name__)

UNGATED_PATHS = frozenset({"/health", "/metrics", "/meta", "/", "/docs", "/openapi.json"})
UNGATED_PREFIXES = ("/static/",)
RETRY_AFTER_S = 1  # the watch pings every second: ask again then


class Reachability:
    def __init__(self) -> None:
        self.reachable: bool | None = None   # None until the first answer or silence
        self.since = time.time()             # when `reachable` last changed

    def note(self, reachable: bool) -> None:
        if reachable != self.reachable:
            if self.reachable is not None:
                log.warning("broker.reachable" if reachable else "broker.unreachable")
            self.reachable, self.since = reachable, time.time()

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reachable": bool(self.reachable), "since": self.since}
        if not self.reachable:
            body["unreachable_since"] = self.since
        return body

    async def ping(self, client: AsyncClient, timeout_s: float) -> dict[str, Any] | None:
        """PING the broker; its answer, or None (noted either way)."""
        try:
            pong = await client.ping(timeout=timeout_s)
        except (TimeoutError, BrokerError):
            self.note(False)
            return None
        self.note(True)
        return pong

    async def watch(self, client: AsyncClient, interval_s: float, timeout_s: float) -> None:
        while True:
            await self.ping(client, timeout_s)
            await asyncio.sleep(interval_s)


def needs_broker(path: str) -> bool:
    return path not in UNGATED_PATHS and not path.startswith(UNGATED_PREFIXES)


class BrokerGate:
    """ASGI middleware: 503 at once for routes that need the broker while it is known down.

    The reachability is the app context's (created by the lifespan), found through
    the app in the scope; before the first ping it is unknown and nothing is refused.
    """

    def __init__(self, app: ASGIApp, frontend: str) -> None:
        self.app = app
        self.frontend = frontend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and needs_broker(scope["path"]):
            ctx = getattr(scope["app"].state, "ctx", None)
            reach = ctx.reachability if ctx is not None else None
            if reach is not None and reach.reachable is False:
                since = datetime.fromtimestamp(reach.since, UTC).strftime("%H:%M:%S UTC")
                message = (f"not sent: the broker at {self.frontend} has not answered since "
                           f"{since}, so nothing was done; retry once GET /health says it "
                           "is reachable")
                response = error_response(503, "unavailable", message,
                                          headers={"Retry-After": str(RETRY_AFTER_S)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
