"""The asyncio client's single-job WAITs, coalesced into one `WAIT {ids, each: true}`.

Every `result()`, `wait()` or `poll()` of one event-loop tick that waits for one job joins a
batch (one per timeout); the batch goes out as one request, and the broker answers it in
parts as its jobs end (`more: true` until the last). Each part resolves the futures of the
jobs it holds. 2,000 `result()` calls in flight then cost the client and the broker one
request and a reply per broker turn, where they cost 2,000 requests and 2,000 replies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from zjobs.broker.wire.errors import BrokerError

MAX_IDS = 5000  # jobs in one coalesced WAIT: its request and first part stay small


class WaitBatches:
    """Single-job waits not sent yet (by timeout), and those sent (by request id)."""

    def __init__(self) -> None:
        # by (timeout, fields): the waits that can share a request
        self._queued: dict[tuple[float, str | None], dict[str, list[asyncio.Future]]] = {}
        self._sent: dict[bytes, dict[str, list[asyncio.Future]]] = {}

    def __contains__(self, rid: object) -> bool:
        return rid in self._sent

    def add(self, job_id: str, timeout: float, future: asyncio.Future,
            fields: str | None = None) -> bool:
        """Queue a wait for `job_id` (`fields`: the WAIT's, e.g. "outcome"); True if it is
        the first queued (send the batch soon)."""
        first = not self._queued
        waits = self._queued.setdefault((round(timeout, 3), fields), {})
        waits.setdefault(job_id, []).append(future)
        return first

    def take(self) -> list[tuple[tuple[float, str | None], dict[str, list[asyncio.Future]]]]:
        """The queued waits as requests to make: ((timeout, fields), job id -> futures), at
        most MAX_IDS each."""
        queued, self._queued = self._queued, {}
        requests = []
        for timeout, waits in queued.items():
            ids = list(waits)
            for start in range(0, len(ids), MAX_IDS):
                requests.append((timeout, {i: waits[i] for i in ids[start:start + MAX_IDS]}))
        return requests

    def sent(self, rid: bytes, waits: dict[str, list[asyncio.Future]]) -> None:
        self._sent[rid] = waits

    def part(self, rid: bytes, ok: bool, body: Any) -> bool:
        """Resolve what one part of request `rid` answers; True when it was the last."""
        waits = self._sent.get(rid)
        if waits is None:
            return True
        if not ok or not isinstance(body, dict):
            error = body if isinstance(body, dict) else {}
            self.fail(rid, BrokerError(str(error.get("code", "error")),
                                       str(error.get("message", ""))))
            return True
        for job in body.get("jobs") or ():
            for future in waits.pop(job.get("id"), ()):
                if not future.done():
                    future.set_result(job)
        for job_id in body.get("missing") or ():
            for future in waits.pop(job_id, ()):
                if not future.done():
                    future.set_exception(BrokerError("not_found", f"no job {job_id}"))
        if body.get("more"):
            return False
        self.fail(rid, BrokerError("internal", "the broker's WAIT ended without the job"))
        return True

    def fail(self, rid: bytes, error: BaseException) -> None:
        """End request `rid`: every future it still holds gets `error`."""
        for futures in self._sent.pop(rid, {}).values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)

    def fail_all(self, error: BaseException) -> None:
        for rid in list(self._sent):
            self.fail(rid, error)
        for _, waits in self.take():
            for futures in waits.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
