"""Clients waiting for jobs to end (the WAIT command), with their deadlines."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Protocol

from . import protocol as p


class _Outbox(Protocol):
    def reply(self, identity: bytes, frames: list[bytes]) -> None: ...


class WaitGroup:
    """One WAIT request: answered when every job in it has ended, or at its deadline."""

    __slots__ = ("identity", "request_id", "ids", "pending", "done", "deadline", "single", "open")

    def __init__(self, identity: bytes, request_id: bytes, ids: list[str], deadline: float,
                 single: bool) -> None:
        self.identity = identity
        self.request_id = request_id
        self.ids = ids
        self.pending = set(ids)
        self.done: dict[str, dict[str, Any]] = {}
        self.deadline = deadline
        self.single = single
        self.open = True

    def answer(self, lookup: Callable[[str], dict[str, Any] | None], outbox: _Outbox) -> None:
        self.open = False
        jobs = [self.done.get(i) or lookup(i) for i in self.ids]
        body: Any = jobs[0] if self.single else {"jobs": jobs}
        outbox.reply(self.identity, p.encode_reply(True, self.request_id, body))


class WaitBook:
    def __init__(self) -> None:
        self._by_job: dict[str, list[WaitGroup]] = {}
        self._deadlines: list[tuple[float, int, WaitGroup]] = []
        self._count = 0

    def add(self, group: WaitGroup, finished: dict[str, dict[str, Any]]) -> bool:
        """Register `group`; `finished` are its jobs already ended. True if it is complete now.

        The deadline must be finite: a NaN compares false with everything, so it would sit
        at the top of the heap for ever and no later deadline would expire.
        """
        if not math.isfinite(group.deadline):
            raise ValueError(f"a wait deadline must be finite, got {group.deadline}")
        group.done.update(finished)
        group.pending.difference_update(finished)
        if not group.pending:
            return True
        for job_id in group.pending:
            self._by_job.setdefault(job_id, []).append(group)
        self._count += 1
        heapq.heappush(self._deadlines, (group.deadline, self._count, group))
        return False

    def job_done(self, job_id: str, wire: Callable[[], dict[str, Any]], outbox: _Outbox) -> None:
        """`wire` makes the job's client view; only called when somebody waits for it."""
        groups = self._by_job.pop(job_id, None)
        if not groups:
            return
        job = wire()
        for group in groups:
            if not group.open:
                continue
            group.done[job_id] = job
            group.pending.discard(job_id)
            if not group.pending:
                group.answer(lambda i: None, outbox)

    def expire(self, mono: float, lookup: Callable[[str], dict[str, Any] | None],
               outbox: _Outbox) -> None:
        heap = self._deadlines
        while heap and (heap[0][0] <= mono or not heap[0][2].open):
            _, _, group = heapq.heappop(heap)
            if group.open:
                group.answer(lookup, outbox)
                for job_id in group.pending:
                    waiting = self._by_job.get(job_id)
                    if waiting is not None:
                        waiting[:] = [g for g in waiting if g.open]
                        if not waiting:
                            del self._by_job[job_id]

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and not heap[0][2].open:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
