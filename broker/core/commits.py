"""The commit book: what a turn changed, buffered for its one commit, and the commit.

The engine records every write of a turn here (new jobs, changed ones, log lines,
artifacts, queue settings) and holds each SUBMIT's reply until the commit: nothing is
announced that the store could still lose. A turn whose only writes are jobs submitted
with `wait` may leave its commit for DEFER_S (`deferred`). A commit the store refuses
costs only the jobs (and settings) it would not take: they are taken back and the rest
committed again (`commit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from zjobs.broker.core.events import EventLog
from zjobs.broker.core.outbox import Outbox
from zjobs.broker.core.purges import Purges
from zjobs.broker.core.schedules import ScheduleBook
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import BAD_REQUEST, UNAVAILABLE, Fenced
from zjobs.broker.wire.jobs import TERMINAL, Job

log = structlog.get_logger(__name__)

# A turn whose only writes are jobs submitted with `wait` (run()) may leave them for a commit
# at most this much later (its replies and events wait with it): their client hears nothing
# before the jobs end anyway, and a job that ends by then is inserted as it ended, one commit
# on the round trip of run() instead of two. (Deferring busy turns too was measured: their
# jobs seldom end before the next commit, a turn of 1,000 jobs takes longer than that, so it
# saved no update and only delayed the answers.)
DEFER_S = 0.002

UNWRITABLE = (UNAVAILABLE, "the store could not be written; try again")

Refused = dict[Any, tuple[str, str]]  # job id, or ("queue" | "schedule", name) -> (code, why)


@dataclass(slots=True)
class HeldSubmit:
    """A reply held until the commit: a SUBMIT's (`ids`: its jobs), or a setting's (`ids`:
    its `("queue" | "schedule", name)`)."""
    identity: bytes
    request_id: bytes
    body: Any
    ids: list[Any]
    wait_s: float | None = None  # SUBMIT with wait: answered when the jobs end, as WAIT is
    outcome: bool = False  # ... showing only their outcome (`fields: "outcome"`)


class CommitBook:
    def __init__(self, store: Store, mono: Callable[[], float], events: EventLog,
                 schedules: ScheduleBook, purges: Purges) -> None:
        self.store = store
        self.mono = mono
        self.events = events
        self.schedules = schedules
        self.purges = purges
        self.inserts: list[Job] = []
        self.dirty: dict[str, Job] = {}  # jobs changed this turn (the new ones too)
        self.logs: list[tuple] = []
        self.artifacts: list[tuple] = []
        self.chunks: list[tuple] = []
        self.queue_rows: dict[str, tuple] = {}  # settings changed this turn, by queue
        self.pending_keys: dict[str, str] = {}  # idempotency key -> this turn's job with it
        self.submits: list[HeldSubmit] = []  # this turn's replies, answered after the commit
        self.defer_until: float | None = None  # see DEFER_S

    def has_writes(self) -> bool:
        return bool(self.inserts or self.dirty or self.logs or self.artifacts or self.chunks
                    or self.queue_rows or self.events.pending or self.schedules.dirty
                    or self.purges.changes())

    def committed(self) -> bool:
        """Whether memory and the store agree on every job (nothing left buffered)."""
        return not (self.inserts or self.dirty)

    # ------------------------------------------------------------ the deferred commit

    def deferred(self) -> bool:
        """Whether the commit waits (DEFER_S at most from the first turn that waited): the
        turn's only writes are jobs submitted with `wait` (`run()`), which nobody has been
        told of, and none has ended yet. Anything else commits now."""
        if not self._only_runs() or self._ended_insert():
            return False
        mono = self.mono()
        if self.defer_until is None:
            self.defer_until = mono + DEFER_S
        return mono < self.defer_until

    def _only_runs(self) -> bool:
        """Whether the turn's only writes are the inserts of jobs submitted with `wait`."""
        if (not self.submits or self.logs or self.artifacts or self.chunks
                or self.queue_rows or self.schedules.dirty or self.purges.changes()
                or any(held.wait_s is None for held in self.submits)):
            return False
        inserted = {job.id for job in self.inserts}
        return inserted <= {i for held in self.submits for i in held.ids} \
            and self.dirty.keys() <= inserted

    def _ended_insert(self) -> bool:
        return any(job.status in TERMINAL for job in self.inserts)

    def due_s(self) -> float | None:
        """Seconds until a deferred commit is due (the loop's poll must wake by then)."""
        if self.defer_until is None:
            return None
        return max(self.defer_until - self.mono(), 0.0)

    # ------------------------------------------------------------ the commit

    def commit(self, order: int, evict: Callable[[Job, str], None]) -> Refused:
        """Write the turn in one transaction (`order`: the last submit order, stored with
        it). If the store fails, take back what it refuses (`evict`: a job leaves memory
        with the reason) and commit the rest. Returns what was refused."""
        self.defer_until = None
        try:
            self._write(order)
        except Fenced:
            raise  # another broker leads now: this one must stop, not retry
        except Exception as exc:  # sqlite3.Error, OverflowError: see Engine.flush
            log.error("store.commit_failed", error=repr(exc), jobs=len(self.inserts))
            return self._commit_without_refused(order, evict)
        return {}

    def _write(self, order: int) -> None:
        inserted = {j.id for j in self.inserts}
        updates = [j for j in self.dirty.values() if j.id not in inserted]
        meta = {"last_seq": self.events.last_seq, "order": order, **self.purges.changes()}
        schedules = self.schedules.changes() if self.schedules.dirty else None
        self.store.commit(self.inserts, updates, self.logs, self.artifacts, meta,
                          self.chunks, schedules=schedules,
                          queues=list(self.queue_rows.values()))
        self.schedules.committed()
        self.purges.committed()
        self.inserts, self.dirty, self.logs, self.artifacts = [], {}, [], []
        self.chunks, self.queue_rows = [], {}
        self.pending_keys.clear()

    def _commit_without_refused(self, order: int, evict: Callable[[Job, str], None]
                                ) -> Refused:
        """Take back the jobs, queue settings and schedules the store refuses (every new job
        if it refuses none: then the store itself failed) and commit the rest. Returns job id
        (or setting key, see `Engine.hold_reply`) -> (code, message)."""
        settings = self._refuse_settings()
        try:
            bad = self.store.refused_inserts(self.inserts)
        except Exception:
            bad = []
        refused: Refused
        if bad or settings:
            refused = {job.id: (BAD_REQUEST, f"job {job.id} could not be stored: {why}")
                       for job, why in bad}
            refused.update(settings)
        else:
            refused = {job.id: UNWRITABLE for job in self.inserts}
        self._evict_batches(refused, evict)
        try:
            self._write(order)
        except Exception as exc:  # the rest stays buffered for the next turn's commit
            log.error("store.unwritable", error=repr(exc))
            refused.update({job.id: UNWRITABLE for job in self.inserts})
            self._evict_batches(refused, evict)
            self.pending_keys.clear()
        return refused

    def _refuse_settings(self) -> Refused:
        """Drop the turn's queue settings and schedule rows the store refuses (a value past
        the checks, as a bug could let through), so they cannot fail every later commit."""
        try:
            bad = self.store.refused_settings(list(self.queue_rows.values()),
                                              self.schedules.changes()[0])
        except Exception:
            return {}
        for (kind, name), why in bad.items():
            if kind == "queue":
                self.queue_rows.pop(name, None)
            else:
                self.schedules.refuse(name)
            log.error(f"{kind}.refused", name=name, reason=why)
        return {(kind, name): (BAD_REQUEST, f"{kind} {name!r} could not be stored: {why}")
                for (kind, name), why in bad.items()}

    def _evict_batches(self, refused: Refused, evict: Callable[[Job, str], None]) -> None:
        """Evict this turn's jobs in `refused` and, a batch being all or nothing, every job
        of this turn that shares a submit with one of them (added to `refused`)."""
        pending = {job.id: job for job in self.inserts}
        while self._add_batch_mates(refused, pending):
            pass
        for job_id, (_, reason) in refused.items():
            job = pending.pop(job_id, None)
            if job is not None:
                evict(job, reason)
        self.inserts = list(pending.values())

    def _add_batch_mates(self, refused: Refused, pending: dict[str, Job]) -> bool:
        grew = False
        for held in self.submits:
            reason = next((refused[i] for i in held.ids if i in refused), None)
            if reason is None:
                continue
            for job_id in held.ids:
                if job_id not in refused and job_id in pending:
                    refused[job_id] = reason
                    grew = True
        return grew

    # ------------------------------------------------------------ the held replies

    def hold(self, held: HeldSubmit) -> None:
        self.submits.append(held)

    def answer_submits(self, refused: Refused, outbox: Outbox,
                       wait: Callable[[HeldSubmit], None]) -> None:
        """Answer the turn's held replies: ERR for those `refused` touches, OK for the rest,
        or (a SUBMIT with `wait_s`) `wait` for its jobs to end."""
        for held in self.submits:
            reason = next((refused[i] for i in held.ids if i in refused), None) \
                if refused else None
            if reason is None and held.wait_s is not None:  # an idempotent repeat may have ended
                wait(held)
            elif reason is None:
                outbox.reply(held.identity, p.encode_reply(True, held.request_id, held.body))
            else:
                outbox.reply(held.identity, p.encode_error(held.request_id, *reason))
        self.submits = []
