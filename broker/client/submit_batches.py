"""The asyncio client's single-job SUBMITs of one event-loop tick, sent as one SUBMIT.

`asyncio.gather(*(client.submit(...) for ...))` then costs the client and the broker one
request and one reply per tick, not one per job. A SUBMIT batch is all or nothing at the
broker, so only jobs that cannot be refused on their own account join one (no id of the
client's, no dependencies: nothing another job's conflict could sink); and if a batch is
refused all the same (the store refused a row), nothing of it was kept, so each of its jobs
is sent again alone and gets its own answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from zjobs.broker.client.plans import SUBMIT_CHUNK

Pending = list[tuple[dict[str, Any], asyncio.Future]]

# A tick's batch goes out as soon as it holds this many jobs, not at the end of the tick:
# the broker works on it while the client goes on with the rest.
EARLY = 256


def joinable(job: dict[str, Any]) -> bool:
    """Whether a single-job SUBMIT body may share a batch with others."""
    return job.get("id") is None and job.get("depends_on") is None and "wait" not in job


class SubmitBatches:
    """Jobs queued this tick, and the batches sent (by request id)."""

    def __init__(self) -> None:
        self._queued: Pending = []
        self._sent: dict[bytes, Pending] = {}

    def __contains__(self, rid: object) -> bool:
        return rid in self._sent

    def add(self, job: dict[str, Any], future: asyncio.Future) -> bool:
        """Queue `job`; True if it is the first of the tick (send the batch soon)."""
        first = not self._queued
        self._queued.append((job, future))
        return first

    def full(self) -> bool:
        """Whether the queued jobs make a batch to send now (EARLY of them)."""
        return len(self._queued) >= EARLY

    def take(self) -> list[Pending]:
        queued, self._queued = self._queued, []
        return [queued[i:i + SUBMIT_CHUNK] for i in range(0, len(queued), SUBMIT_CHUNK)]

    def sent(self, rid: bytes, batch: Pending) -> None:
        self._sent[rid] = batch

    def answered(self, rid: bytes, ok: bool, body: Any) -> Pending:
        """Resolve batch `rid` from its reply. A refused batch of several jobs is returned,
        to be sent again job by job; a refused single job gets the error (`failed`)."""
        batch = self._sent.pop(rid, [])
        if ok and isinstance(body, dict) and len(body.get("ids") or ()) == len(batch):
            for (_, future), job_id in zip(batch, body["ids"], strict=True):
                if not future.done():
                    future.set_result({"id": job_id, "ids": [job_id]})
            return []
        return batch

    def fail(self, rid: bytes, error: BaseException) -> None:
        for _, future in self._sent.pop(rid, []):
            if not future.done():
                future.set_exception(error)
