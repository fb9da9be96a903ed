"""Clients waiting for jobs to end (the WAIT command), with their deadlines."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Protocol

from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.jobs import Job, outcome_of


class _Outbox(Protocol):
    def reply(self, identity: bytes, frames: list[bytes]) -> None: ...


class WaitGroup:
    """One WAIT request: answered when every job in it has ended, or at its deadline.

    With `each` (WAIT `{ids, each: true}`) it is answered in parts instead: every turn in
    which some of its jobs end sends those (`more: true`), and the last part comes when the
    last job ends or at the deadline. Thousands of `result()` calls of one client then cost
    one request and a reply per turn, not a request and a reply each.
    """

    __slots__ = ("identity", "request_id", "ids", "pending", "done", "deadline", "single",
                 "open", "each", "fresh", "missing", "outcome")

    def __init__(self, identity: bytes, request_id: bytes, ids: list[str], deadline: float,
                 single: bool, each: bool = False, missing: list[str] | None = None,
                 outcome: bool = False) -> None:
        self.identity = identity
        self.request_id = request_id
        self.ids = ids
        self.pending = set(ids)
        self.done: dict[str, dict[str, Any]] = {}
        self.deadline = deadline
        self.single = single
        self.open = True
        self.each = each
        self.fresh: list[dict[str, Any]] = []  # `each`: ended since the last part was sent
        self.missing = missing or []  # `each`: ids the broker does not know, sent in part one
        self.outcome = outcome  # `fields: "outcome"`: only what `result()` needs of each job

    def view(self, job: dict[str, Any] | None) -> dict[str, Any] | None:
        """A job's client view as this wait shows it."""
        return outcome_of(job) if self.outcome and job is not None else job

    def answer(self, lookup: Callable[[str], dict[str, Any] | None], outbox: _Outbox) -> None:
        self.open = False
        if self.each:
            rest = [view for view in map(self.view, map(lookup, sorted(self.pending)))
                    if view is not None]
            self.send_part(outbox, self.fresh + rest, more=False)
            return
        jobs = [self.done.get(i) or self.view(lookup(i)) for i in self.ids]
        body: Any = jobs[0] if self.single else {"jobs": jobs}
        outbox.reply(self.identity, p.encode_reply(True, self.request_id, body))

    def send_part(self, outbox: _Outbox, jobs: list[dict[str, Any]], *, more: bool) -> None:
        body: dict[str, Any] = {"jobs": jobs, "more": more}
        if self.missing:
            body["missing"], self.missing = self.missing, []
        self.fresh = []
        outbox.reply(self.identity, p.encode_reply(True, self.request_id, body))


class WaitBook:
    def __init__(self) -> None:
        self._by_job: dict[str, list[WaitGroup]] = {}
        self._deadlines: list[tuple[float, int, WaitGroup]] = []
        self._count = 0
        self._parts: list[WaitGroup] = []  # `each` groups with jobs ended this turn
        self._held: dict[bytes, int] = {}  # open groups per client identity
        self._closed = 0  # answered groups still in _deadlines (they leave it lazily)

    def held(self, identity: bytes) -> int:
        """The requests of client `identity` held here, not answered yet (its WAITs and its
        SUBMITs with `wait`): what counts against its requests in flight."""
        return self._held.get(identity, 0)

    def _close(self, group: WaitGroup, lookup: Callable[[str], dict[str, Any] | None],
               outbox: _Outbox) -> None:
        group.answer(lookup, outbox)
        left = self._held[group.identity] - 1
        if left:
            self._held[group.identity] = left
        else:
            del self._held[group.identity]

    def _compact(self) -> None:
        """Drop the answered groups from the deadline heap: behind one long wait they would
        otherwise stay, with the jobs they answered, until it ends."""
        self._deadlines = [entry for entry in self._deadlines if entry[2].open]
        heapq.heapify(self._deadlines)
        self._closed = 0

    def add(self, group: WaitGroup, finished: dict[str, dict[str, Any]]) -> bool:
        """Register `group`; `finished` are its jobs already ended. True if it is complete now.

        The deadline must be finite: a NaN compares false with everything, so it would sit
        at the top of the heap for ever and no later deadline would expire.
        """
        if not math.isfinite(group.deadline):
            raise ValueError(f"a wait deadline must be finite, got {group.deadline}")
        group.pending.difference_update(finished)
        if group.each:
            group.fresh.extend(finished.values())
            if group.pending and (group.fresh or group.missing):
                self._parts.append(group)
        else:
            group.done.update(finished)
        if not group.pending:
            return True
        for job_id in group.pending:
            self._by_job.setdefault(job_id, []).append(group)
        self._held[group.identity] = self._held.get(group.identity, 0) + 1
        self._count += 1
        heapq.heappush(self._deadlines, (group.deadline, self._count, group))
        return False

    def job_done(self, ended: Job, outbox: _Outbox) -> None:
        """The job ended: its waits get its client view (made only when somebody waits, and
        once per form: the whole job, or its outcome)."""
        groups = self._by_job.pop(ended.id, None)
        if not groups:
            return
        job_id = ended.id
        views: dict[bool, dict[str, Any]] = {}
        for group in groups:
            if not group.open:
                continue
            job = views.get(group.outcome)
            if job is None:
                job = views[group.outcome] = ended.outcome() if group.outcome \
                    else ended.to_wire()
            group.pending.discard(job_id)
            if group.each:
                if not group.fresh and group.pending:
                    self._parts.append(group)
                group.fresh.append(job)
            else:
                group.done[job_id] = job
            if not group.pending:
                self._close(group, lambda i: None, outbox)
                self._closed += 1  # it stays in the heap until it reaches its top
        if self._closed > 1024 and self._closed * 2 > len(self._deadlines):
            self._compact()

    def send_parts(self, outbox: _Outbox) -> None:
        """The turn's parts of the `each` groups still open (a closed one sent its last)."""
        parts, self._parts = self._parts, []
        for group in parts:
            if group.open and (group.fresh or group.missing):
                group.send_part(outbox, group.fresh, more=True)

    def expire(self, mono: float, lookup: Callable[[str], dict[str, Any] | None],
               outbox: _Outbox) -> None:
        heap = self._deadlines
        while heap and (heap[0][0] <= mono or not heap[0][2].open):
            _, _, group = heapq.heappop(heap)
            if not group.open:
                self._closed -= 1
            else:
                self._close(group, lookup, outbox)
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
            self._closed -= 1
        return heap[0][0] if heap else None
