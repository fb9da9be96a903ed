"""Whether the broker answers, and since when: what /health and the dashboard report.

A background task pings the broker every `interval_s`; /health records its
own pings too. The dashboard shows "Live" only while the broker answers and
"broker unreachable since HH:MM:SS" otherwise, so a green badge never sits
over a dead broker just because the API's own event stream is still open.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from broker import AsyncClient, BrokerError

log = structlog.get_logger(__name__)


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
