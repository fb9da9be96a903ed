"""The scheduling core: job lifecycle, dispatch, worker liveness. No sockets.

Every method takes its time from the injected clock and records what must
go out in the `Outbox`; the server sends it after `flush` has committed the
turn's changes, so nothing is announced that the store could still lose.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

import structlog

from zjobs.broker.core.artifacts import DEFAULT_CONTENT_TYPE, ArtifactTransfers
from zjobs.broker.core.backlog import TRIM_AT, Backlog
from zjobs.broker.core.commits import CommitBook, HeldSubmit, Refused
from zjobs.broker.core.dependencies import DependencyBook
from zjobs.broker.core.events import EventLog
from zjobs.broker.core.outbox import JobTuple, Outbox
from zjobs.broker.core.purges import Purges
from zjobs.broker.core.queues import ReadyQueues, Timeline
from zjobs.broker.core.rates import RateCounter
from zjobs.broker.core.schedules import ScheduleBook
from zjobs.broker.core.submit import build_job
from zjobs.broker.core.throttle import Throttle
from zjobs.broker.core.waits import WaitBook, WaitGroup
from zjobs.broker.core.workers import (
    MAX_PREFETCH,
    Worker,
    WorkerRegistry,
    group_view,
    requirement,
)
from zjobs.broker.stores.rows import blob
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import (
    BAD_REQUEST,
    CONFLICT,
    NOT_FOUND,
    CommandError,
    job_error,
)
from zjobs.broker.wire.jobs import (
    RETRYABLE,
    TERMINAL,
    WAITING,
    Job,
    JobState,
    dependencies,
    outcome_of,
)
from zjobs.broker.wire.schema import STATE_EVENTS, EventType, plain_members
from zjobs.broker.wire.settings import default
from zjobs.broker.wire.text import storable, text_problem

log = structlog.get_logger(__name__)

S = plain_members(JobState)  # the same members, looked up faster
E = plain_members(EventType)

# A restarted broker whose store holds queued or running jobs starts none for this many
# heartbeat intervals: a worker still running a job the broker had sent it (whose start
# was never committed) notices the restart by then (its next message draws DISCONNECT),
# registers, and reclaims it (`_reclaim`) instead of it starting on another worker too.
RESTART_GRACE = 1.5
MAX_TOLD_TO_REGISTER = 10_000  # unknown identities remembered as already sent DISCONNECT
MAX_HELD_RESULT_BYTES = 64 * 1024 * 1024  # results of unknown workers kept for their READY
RECENT_MAX = 20_000  # ended jobs kept in memory for the reads that follow their end
PURGEABLE = WAITING  # what a purge cancels
PURGE_ORDER = (S.DEFERRED, S.SCHEDULED, S.QUEUED)  # the order a purge's pages read them in


class Clock(Protocol):
    def wall(self) -> float: ...
    def mono(self) -> float: ...


class SystemClock:
    wall = staticmethod(time.time)
    mono = staticmethod(time.monotonic)


@dataclass(slots=True)
class EngineConfig:
    heartbeat_interval_s: float = default("heartbeat_interval")
    heartbeat_liveness: int = default("heartbeat_liveness")
    lost_allowance: int = 3          # extra attempts a job may lose to dead workers
    retry_backoff_cap_s: float = 300.0
    attempt_grace_s: float = 10.0    # broker-side expiry of a silent attempt: timeout + grace
    default_timeout_s: float | None = default("default_timeout")
    event_window: int = default("event_window")
    max_artifact_bytes: int = 64 * 1024 * 1024  # per attempt, as the exec runner's cap
    # After a restart, jobs that were running wait this long (default: twice the heartbeat
    # liveness window) for their worker to re-register with them before anyone else gets them.
    recovery_hold_s: float | None = None
    # Jobs that ended lately stay in memory this long (at most RECENT_MAX of them), so the
    # WAITs and GETs that follow an end (a client's result()) need no store read.
    recent_s: float = 30.0
    # Ready jobs kept in memory per queue and requirement, the next by priority then FIFO;
    # as many waiting for a time, and deferred ones. The rest wait in the store.
    queue_window: int = default("queue_window")
    # How long a restarted broker with jobs to run starts none (default: RESTART_GRACE
    # heartbeat intervals). A standby taking over needs longer (`takeover_grace_s`).
    restart_grace_s: float | None = None


def takeover_grace_s(heartbeat_interval_s: float, heartbeat_liveness: int) -> float:
    """The restart grace of a broker taking over from another (a standby): its workers
    were connected to the other's endpoint, so each first has to find it silent (a liveness
    window) before it moves on to this one, then register (RESTART_GRACE intervals)."""
    return (heartbeat_liveness + RESTART_GRACE) * heartbeat_interval_s


def _purge_error(queue: str) -> bytes:
    return p.pack(job_error("Cancelled", f"queue {queue} was purged"))


# Errors that end the job whatever its retries: another attempt would fail the same way.
FINAL_ERRORS = frozenset({"ResultTooLarge"})


class Engine:
    def __init__(self, store: Store, clock: Clock, config: EngineConfig,
                 events: EventLog | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        meta = store.meta()
        self.events = events or EventLog(meta.get("last_seq", 0), config.event_window,
                                         clock.wall)
        self.outbox = Outbox()
        # The unfinished jobs held in memory: the windows of the ready and waiting ones
        # (see broker/backlog.py), the deferred ones up to a window, those workers hold, and
        # this turn's. The rest of a deep queue is in the store only.
        self.active: dict[str, Job] = {}
        self.counts: Counter[tuple[str, str]] = Counter(store.counts())
        # queued jobs (held or not, in memory or not) per (queue, requirement): `unserved`
        self.queued_needs: Counter[tuple[str, str]] = Counter(store.queued_needs())
        self.ready = ReadyQueues(self._is_ready)
        self.timeline = Timeline()
        self.backlog = Backlog(store, self.ready, self.timeline, config.queue_window,
                               clock.wall())
        self.purges = Purges(meta)  # deep queues' purges under way, a page per turn
        self.workers = WorkerRegistry()
        self.waits = WaitBook()
        self._expiries: list[tuple[float, str, int, str]] = []  # (mono, job, attempt, worker)
        # job id -> (worker name, attempt, lost_count before): requeued because that worker was
        # lost (or the broker restarted), so the worker may take it back if it reports it.
        # The name is the worker's (its group's, for a sync slot): what `job.worker` shows.
        self._orphans: dict[str, tuple[str, int, int]] = {}
        # job id -> the peer holding it: running there, or buffered there (still `queued`:
        # a worker with a prefetch window holds jobs it has not started)
        self._holders: dict[str, Worker] = {}
        # ended jobs, oldest first, with when they ended (monotonic): see `recent_s`
        self._recent: OrderedDict[str, tuple[float, Job]] = OrderedDict()
        # unknown peers sent DISCONNECT -> the results they sent since, replayed after their READY
        self._told: OrderedDict[bytes, list[tuple[int, dict[str, Any]]]] = OrderedDict()
        self._held_bytes = 0
        self.stats: Counter[str] = Counter()
        self._order = meta.get("order", 0)  # stored with every commit that adds jobs
        self.transfers = ArtifactTransfers(config.max_artifact_bytes)
        # dependencies, in memory only (rebuilt from the store in _recover)
        self.deps = DependencyBook(store, self.active, live=self._live, promote=self._promote,
                                   cancel=self._end_dependent, purged=self._purged)
        self.finished = RateCounter()
        # per-second history of the two outcomes the dashboard charts, so a reload keeps it
        self.finished_by: dict[str, RateCounter] = {S.SUCCEEDED: RateCounter(),
                                                    S.FAILED: RateCounter()}
        self.schedules = ScheduleBook(store.load_schedules(), self.events, self._submit_scheduled)
        self.throttle = Throttle(store.queue_settings(), clock.mono())
        # the turn's writes, committed at its end (`flush`)
        self.book = CommitBook(store, clock.mono, self.events, self.schedules, self.purges)
        self._dispatch_from = 0.0  # mono: no job starts before (RESTART_GRACE)
        self._recover()

    # ------------------------------------------------------------ restart

    def _recover(self) -> None:
        """Resume the unfinished jobs: those that were running, and the first page of each
        window (the next ready jobs of each queue and requirement, the next due, a window
        of the deferred ones). The rest stays in the store until the windows drain; what
        the broker must know of it (how many per queue and state) comes from counts.

        A job that was running is requeued, but held back for a while: its
        worker may still run it and re-register with it (see `_reclaim`).
        """
        config = self.config
        hold_s = config.recovery_hold_s
        if hold_s is None:
            hold_s = 2 * config.heartbeat_interval_s * config.heartbeat_liveness
        wall = self.clock.wall()
        for job in self.store.jobs_in(S.RUNNING):
            self.active[job.id] = job
            if job.worker is not None:
                self._orphans[job.id] = (job.worker, job.attempts, job.lost_count)
            self._set_status(job, S.QUEUED)
            job.worker = None
            self.events.emit(E.JOB_RETRYING, self._job_event(job, reason="broker_restart"))
            self.timeline.add(wall + hold_s, job.order, job.id, pinned=True)
        needs = [key for key, n in self.queued_needs.items() if n > 0]
        for job in self.backlog.recover(needs, wall, self.purges):
            self.active[job.id] = job
        deferred = self.store.jobs_in(S.DEFERRED, config.queue_window)
        for job in deferred:
            self.active[job.id] = job
        self.deps.spilled = len(deferred) < self._deferred_total()
        self.deps.rewire(deferred)
        if any(job.status == S.QUEUED for job in self.active.values()):
            grace_s = config.restart_grace_s
            if grace_s is None:
                grace_s = RESTART_GRACE * config.heartbeat_interval_s
            self._dispatch_from = self.clock.mono() + grace_s
        if self.active:
            log.info("broker.recovered", jobs=len(self.active),
                     waiting=sum(n for (_, status), n in self.counts.items()
                                 if status not in TERMINAL))

    # ------------------------------------------------------------ state helpers

    def _is_ready(self, job_id: str) -> bool:
        job = self.active.get(job_id)
        return job is not None and job.status == S.QUEUED and job_id not in self._holders

    def _set_status(self, job: Job, new: str) -> None:
        """Move the job; it is written with the turn's one commit.

        `running` is written too, so the store keeps the attempt count and the
        worker: a job run twice across a broker crash says so in `attempts`,
        and a restarted broker knows which worker may still hold it.
        """
        old = job.status
        job.move(new)
        counts = self.counts
        counts[(job.queue, old)] -= 1
        counts[(job.queue, new)] += 1
        if old == S.QUEUED or new == S.QUEUED:
            self.queued_needs[(job.queue, requirement(job.kind, job.task))] += \
                1 if new == S.QUEUED else -1
        self.book.dirty[job.id] = job

    def _count_new(self, job: Job, delta: int) -> None:
        """A job enters the counts (admitted) or leaves them (taken back)."""
        self.counts[(job.queue, job.status)] += delta
        if job.status == S.QUEUED:
            self.queued_needs[(job.queue, requirement(job.kind, job.task))] += delta

    def _deferred_total(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if status == S.DEFERRED)

    def _touch(self, job: Job) -> None:
        self.book.dirty[job.id] = job

    def _enqueue(self, job: Job) -> None:
        """Put a scheduled or queued job where it waits: the timeline or its ready queue
        (their windows: past a window's edge, in the store)."""
        if job.run_at is not None and job.run_at > self.clock.wall():
            if not self.timeline.add(job.run_at, job.order, job.id):
                self.backlog.refuse_due(job)
        else:
            if job.status == S.SCHEDULED:
                self._set_status(job, S.QUEUED)
            self._make_ready(job)

    def _make_ready(self, job: Job) -> None:
        need = requirement(job.kind, job.task)
        if not self.ready.push(job.queue, need, job.priority, job.order, job.id):
            self.backlog.refuse(job, need)

    def _job_event(self, job: Job, **extra: Any) -> dict[str, Any]:
        event = {
            "job_id": job.id, "queue": job.queue, "task": job.task, "kind": job.kind,
            "status": job.status, "attempts": job.attempts, "worker": job.worker,
        }
        event.update(extra)
        return event

    def _live(self, job_id: str) -> Job | None:
        """The job if the broker holds it: unfinished, changed this turn and not committed, or
        ended a moment ago."""
        job = self.active.get(job_id) or self.book.dirty.get(job_id)
        if job is None and job_id in self._recent:
            ended_at, ended = self._recent[job_id]
            if ended_at >= self.clock.mono() - self.config.recent_s:
                job = ended  # (an older one may be purged from the store by now)
        return job

    def _remember(self, job: Job) -> None:
        """Keep an ended job at hand for a while (RECENT_MAX at most, `recent_s` each)."""
        recent = self._recent
        mono = self.clock.mono()
        recent[job.id] = (mono, job)
        horizon = mono - self.config.recent_s
        while recent and (len(recent) > RECENT_MAX or next(iter(recent.values()))[0] < horizon):
            recent.popitem(last=False)

    def _view(self, job: Job) -> dict[str, Any]:
        """A live job as clients see it: its wire fields, plus `unserved: true` when it is
        queued and no live worker can run it (none serves its queue with its task, or with
        the flag its kind needs), so a job that would wait forever says so."""
        wire = job.to_wire()
        if job.status == S.QUEUED and not self.workers.any_can_run(
                job.queue, requirement(job.kind, job.task)):
            wire["unserved"] = True
        return wire

    def _is_live(self, job_id: str) -> bool:
        return self._live(job_id) is not None

    def _stored_view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A stored job as clients see it: a queued one in the store only (deep in its queue)
        says `unserved` as a live one does."""
        if row["status"] == S.QUEUED and not self.workers.any_can_run(
                row["queue"], requirement(row["kind"], row["task"])):
            row["unserved"] = True
        return row

    def lookup(self, job_id: str) -> dict[str, Any] | None:
        """The job as clients see it, including changes of this turn not yet committed."""
        job = self._live(job_id)
        if job is not None:
            return self._view(job)
        row = self.store.get(job_id)
        return self._stored_view(row) if row is not None else None

    def lookup_many(self, ids: list[str], outcome: bool = False) -> dict[str, dict[str, Any]]:
        """Like `lookup` for many ids, with one store query for those not in memory; with
        `outcome`, each job's outcome fields only (`Job.outcome`)."""
        found: dict[str, dict[str, Any]] = {}
        missing = []
        for job_id in ids:
            job = self._live(job_id)
            if job is not None:
                found[job_id] = job.outcome() if outcome else self._view(job)
            else:
                missing.append(job_id)
        if missing:
            rows = self.store.get_many(missing)
            found.update({i: outcome_of(row) for i, row in rows.items()} if outcome
                         else {i: self._stored_view(row) for i, row in rows.items()})
        return found

    def overlay(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store rows with live state for the jobs still in memory (`running` is not stored)."""
        out = []
        for row in jobs:
            job = self._live(row["id"])
            out.append(self._view(job) if job is not None else self._stored_view(row))
        return out

    def _load(self, job_id: str) -> Job | None:
        return self._live(job_id) or self.store.load_job(job_id)

    # ------------------------------------------------------------ submit

    def submit(self, specs: list[Any]) -> list[str]:
        """Validate and add a batch of jobs; all or nothing. Returns ids in order."""
        wall = self.clock.wall()
        built: list[Job] = []
        for index, spec in enumerate(specs):
            try:
                built.append(build_job(spec, wall))
            except (TypeError, ValueError, OverflowError) as exc:
                raise CommandError(BAD_REQUEST, f"job {index}: {exc}") from None
        self._check_ids([job for job, spec in zip(built, specs, strict=True)
                          if spec.get("id") is not None])
        self._check_dependencies(built)
        return [self._admit(job) for job in built]

    def _check_dependencies(self, built: list[Job]) -> None:
        """Refuse the batch if a job depends on itself or on a job that is not known: not
        held, not stored, not an earlier job of this batch."""
        earlier: set[str] = set()
        for index, job in enumerate(built):
            for dep in dependencies(job):
                if dep == job.id:
                    raise CommandError(BAD_REQUEST, f"job {index}: depends_on names the job "
                                       "itself")
                if dep not in earlier and self._live(dep) is None \
                        and not self.store.exists(dep):
                    raise CommandError(NOT_FOUND, f"job {index}: depends_on: no job {dep}")
            earlier.add(job.id)

    def _existing_for_key(self, key: str | None) -> str | None:
        if key is None:
            return None
        return self.book.pending_keys.get(key) or self.store.find_idempotent(key)

    def _check_ids(self, jobs: list[Job]) -> None:
        """Refuse the batch before any of it is admitted (all or nothing) if an id its client
        gave exists already or comes twice; a job its idempotency key finds is no conflict."""
        seen: set[str] = set()
        for job in jobs:
            if self._existing_for_key(job.idempotency_key) is not None:
                continue
            if job.id in seen or self._live(job.id) is not None or self.store.exists(job.id):
                raise CommandError(CONFLICT, f"a job with id {job.id} exists already")
            seen.add(job.id)

    def _admit(self, job: Job) -> str:
        key = job.idempotency_key
        if key is not None:
            existing = self._existing_for_key(key)
            if existing is not None:
                self.stats["idempotent_hits"] += 1
                return existing
            self.book.pending_keys[key] = job.id
        self._order += 1
        job.order = self._order
        self.active[job.id] = job
        self._count_new(job, 1)
        self.book.inserts.append(job)
        self.stats["submitted"] += 1
        kind = E.JOB_SCHEDULED if job.status == S.SCHEDULED else E.JOB_SUBMITTED
        self.events.emit(kind, self._job_event(job, priority=job.priority, run_at=job.run_at))
        if job.status == S.DEFERRED:
            self.deps.defer(job)
        else:
            self._enqueue(job)
        return job.id

    def _submit_scheduled(self, spec: dict[str, Any], name: str) -> str | None:
        """A schedule's firing: its job, unless its slot (the idempotency key) has one."""
        if self._existing_for_key(spec["idempotency_key"]) is not None:
            return None
        job = build_job(spec, self.clock.wall())
        job.schedule = name
        return self._admit(job)

    # ------------------------------------------------------------ dependencies

    def _promote(self, job: Job) -> None:
        """Every dependency has succeeded: the job waits for its run_at, or for a worker."""
        due = job.run_at is not None and job.run_at > self.clock.wall()
        self._set_status(job, S.SCHEDULED if due else S.QUEUED)
        self.events.emit(STATE_EVENTS[job.status], self._job_event(
            job, priority=job.priority, run_at=job.run_at, reason="dependencies_met"))
        self._enqueue(job)

    def _end_dependent(self, job: Job, dep: str, status: str | None) -> None:
        what = f"ended {status}" if status is not None else "is not known"
        error = job_error("DependencyFailed", f"dependency {dep} {what}")
        self._end(job, S.CANCELLED, error=p.pack(error))

    def hold_submit_reply(self, identity: bytes, request_id: bytes, body: Any,
                          ids: list[str], wait_s: float | None = None,
                          outcome: bool = False) -> None:
        """Answer a SUBMIT after the commit: OK if its jobs are stored, ERR if the store
        refused them (then they are gone from memory too, see `_evict`). With `wait_s`, the
        OK waits, as a WAIT would, until the jobs have ended or `wait_s` has passed: one
        round trip for a job and its result."""
        self.book.hold(HeldSubmit(identity, request_id, body, ids, wait_s, outcome))

    def hold_reply(self, identity: bytes, request_id: bytes, body: Any, key: tuple[str, str]
                   ) -> None:
        """Answer a command that changes a stored setting after the commit, as a SUBMIT is:
        ERR if the store refused the row of `key` (`("queue" | "schedule", name)`)."""
        self.book.hold(HeldSubmit(identity, request_id, body, [key]))

    # ------------------------------------------------------------ dispatch

    def dispatch(self) -> None:
        """Hand queued jobs to free workers, least recently used first, one job per pass.

        A worker takes only jobs it can run (its tasks, its exec/pickle flags);
        a job no live worker can run waits in its queue (see `unserved`). A window that ran
        low is topped up from the store first, and again whenever one runs dry.
        """
        if not self.workers.free_in_lru_order():
            return
        if self._dispatch_from:  # a restart's grace (RESTART_GRACE); no clock read after it
            if self.clock.mono() < self._dispatch_from:
                return
            self._dispatch_from = 0.0
        self._refill_ready()
        if not self.ready.any_work():
            return
        throttle = self.throttle
        throttle.refill(self.clock.mono())
        closed = throttle.closed
        if self.purges:  # a queue being purged starts nothing until its purge is done
            closed = closed | set(self.purges.under_way)
        progress = True
        while progress:
            progress = False
            for worker in self.workers.free_in_lru_order():
                job_id = self.ready.pop_best(worker.queues, worker.pick, closed)
                if job_id is not None:
                    job = self.active[job_id]
                    self._assign(job, worker)
                    throttle.started(job.queue)
                    progress = True
            if not progress and self.ready.has_backlog():
                progress = self._refill_ready() > 0 and bool(self.workers.free_in_lru_order())

    def _refill_ready(self) -> int:
        """Read the next page into each ready window that ran low; how many were read."""
        if not self.ready.has_backlog():
            return 0
        loaded, pages = self.backlog.refill_ready(self.clock.wall(), self._is_live,
                                                  self.purges)
        active = self.active
        for job in loaded:
            active[job.id] = job
        return pages

    def _assign(self, job: Job, worker: Worker) -> None:
        """Hand `job` to `worker`: running now, or buffered until its STARTED when the worker
        reports starts (it has a prefetch window)."""
        self._hold(job, worker)
        timeout = self._timeout(job)
        self.outbox.job(worker.identity, worker.compact, (
            job.id, job.kind, job.task, job.attempts + 1, timeout, job.queue, job.payload))
        worker.last_sent = self.clock.mono()
        if not worker.reports_starts:
            self._start(job, worker)

    def _hold(self, job: Job, worker: Worker) -> None:
        """`worker` holds `job` from now (buffered or running): its credit is taken."""
        self._holders[job.id] = worker
        self.workers.note_assigned(worker, job.id, requirement(job.kind, job.task))

    def _start(self, job: Job, worker: Worker) -> None:
        """The attempt begins: the job is `running` on `worker` from now."""
        self._set_status(job, S.RUNNING)
        if self._orphans:
            self._orphans.pop(job.id, None)  # started elsewhere: its old worker cannot have it
        job.attempts += 1
        job.worker = worker.group
        job.started_at = self.clock.wall()
        timeout = self._timeout(job)
        if timeout is not None:
            self._expire_at(timeout + self.config.attempt_grace_s, job, worker)
        self.events.emit(E.JOB_STARTED, self._job_event(job))

    def _buffered(self, job: Job | None, worker: Worker) -> TypeGuard[Job]:
        """Whether `job` waits in `worker`'s buffer (held there, not started)."""
        return (job is not None and job.status == S.QUEUED
                and self._holders.get(job.id) is worker)

    def _unbuffer(self, job_id: str, worker: Worker) -> bool:
        """A job the worker held but never started goes back to its queue, its attempt
        uncounted (a window returned, a worker that drains or is lost). True if it did."""
        job = self.active.get(job_id)
        if not self._buffered(job, worker):
            return False
        del self._holders[job_id]
        self.workers.note_released(worker, job_id)
        self.stats["returned"] += 1
        self._make_ready(job)
        return True

    def _timeout(self, job: Job) -> float | None:
        return job.timeout_s if job.timeout_s is not None else self.config.default_timeout_s

    # ------------------------------------------------------------ worker messages

    def worker_message(self, identity: bytes, msg: p.WorkerMessage) -> None:
        mono = self.clock.mono()
        if msg.command == p.READY:
            self._register(identity, msg.bodies[0] if msg.bodies else {})
            return
        worker = self.workers.get(identity)
        if worker is None:
            self._unknown_worker(identity, msg)
            return
        worker.last_seen = mono
        handler = self._WORKER_HANDLERS.get(msg.command)
        if handler is not None:
            if msg.command == p.RESULT and worker.reports_starts:
                # the starts first, then the ends: a batch's events come in two runs
                for body in msg.bodies:
                    self._current(worker, body)
            for body in msg.bodies:
                handler(self, worker, body)
        elif msg.command == p.WINDOW:
            for body in msg.bodies:
                self._on_window(worker, body)
        elif msg.command == p.DISCONNECT:
            self._on_disconnect(worker, msg.bodies[0] if msg.bodies else {})

    def _on_window(self, worker: Worker, body: dict[str, Any]) -> None:
        """A worker's new prefetch window, with the buffered jobs it hands back."""
        try:
            returned = p.returned_ids(body)
        except p.ProtocolError:
            self.stats["malformed"] += 1
            return
        for job_id in returned:
            self._unbuffer(job_id, worker)
        prefetch = min(max(body["prefetch"], 0), MAX_PREFETCH)
        self.workers.set_capacity(worker, worker.capacity, prefetch)

    def _on_disconnect(self, worker: Worker, body: dict[str, Any]) -> None:
        if not body.get("drain"):
            self._drop_worker(worker, lost=False)
            return
        # shutting down: finish what it runs, take nothing new, hand back what it buffered
        self.workers.set_capacity(worker, 0, 0)
        for job_id in [j for j in worker.running if self._buffered(self.active.get(j), worker)]:
            self._unbuffer(job_id, worker)

    def _unknown_worker(self, identity: bytes, msg: p.WorkerMessage) -> None:
        """A peer we do not know (we restarted, or declared it lost): make it re-register.

        One DISCONNECT per episode: every message it sends before its READY
        arrives would otherwise draw another DISCONNECT, and another READY.
        Its RESULTs are held (within a byte budget) and applied after that
        READY: a stalled worker's job that ended while it was unknown then
        counts once instead of running again.
        """
        self.stats["unknown_worker_messages"] += 1
        if msg.command == p.DISCONNECT:
            return
        held = self._told.get(identity)
        if held is None:
            held = self._told[identity] = []
            if len(self._told) > MAX_TOLD_TO_REGISTER:
                self._release_held(self._told.popitem(last=False)[1])
            self.outbox.to_worker(identity, p.DISCONNECT)
        if msg.command == p.RESULT:
            for body in msg.bodies:
                size = len(p.pack(body))
                if self._held_bytes + size <= MAX_HELD_RESULT_BYTES:
                    self._held_bytes += size
                    held.append((size, body))

    def _release_held(self, held: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        self._held_bytes -= sum(size for size, _ in held)
        return [body for _, body in held]

    def _register(self, identity: bytes, ready: dict[str, Any]) -> None:
        mono = self.clock.mono()
        try:
            reported = p.ready_running(ready)
            worker = Worker(identity, ready, mono, self.clock.wall(),
                            self.config.heartbeat_interval_s, self.config.heartbeat_liveness)
        except (p.ProtocolError, ValueError, TypeError, KeyError) as exc:
            self.stats["malformed"] += 1
            log.debug("worker.ready_refused", reason=str(exc))
            return
        held = self._release_held(self._told.pop(identity, []))
        kept = self._retire(worker, reported)
        self.workers.add(worker)
        for job_id in kept:
            self._hold(self.active[job_id], worker)
        self._adopt(worker, reported, kept)
        for body in held:
            self._on_result(worker, body)
        # Acknowledge at once: the worker's silence clock runs from its connect.
        self.outbox.to_worker(identity, p.HEARTBEAT)
        worker.last_sent = mono
        if worker.member:  # a sync slot: part of its worker, which the views show
            log.debug("worker.slot_joined", worker=worker.name, kept=len(worker.running))
            return
        self.events.emit(E.WORKER_JOINED, {
            "worker": worker.name, "host": worker.host, "queues": list(worker.queues),
            "capacity": worker.slots or worker.capacity, "pid": worker.pid,
            "running": sorted(worker.running),
        })
        log.info("worker.joined", worker=worker.name, queues=worker.queues,
                 capacity=worker.slots or worker.capacity, kept=len(worker.running))

    def _retire(self, worker: Worker, reported: dict[str, int]) -> set[str]:
        """Drop the earlier registrations of this identity or this name (a worker that
        reconnected); the jobs its READY still reports running stay with it."""
        kept: set[str] = set()
        olds = {self.workers.get(worker.identity), self.workers.by_name(worker.name)}
        for old in (one for one in olds if one is not None):
            keep = {job_id for job_id in old.running
                    if self._runs(job_id, old, reported.get(job_id))}
            kept |= keep
            self._drop_worker(old, lost=True, keep=keep)
        return kept

    def _runs(self, job_id: str, holder: Worker, attempt: int | None) -> bool:
        job = self.active.get(job_id)
        return (job is not None and job.status == S.RUNNING
                and self._holders.get(job_id) is holder and job.attempts == attempt)

    def _adopt(self, worker: Worker, reported: dict[str, int], kept: set[str]) -> None:
        """Jobs a (re-)registering worker runs: keep what the broker still has for it,
        cancel the rest (ended meanwhile, or started elsewhere)."""
        for job_id, attempt in reported.items():
            if job_id in kept or self._reclaim(worker, job_id, attempt):
                continue
            self.stats["cancelled_on_register"] += 1
            self.outbox.cancel_job(worker.identity, job_id)

    def _reclaim(self, worker: Worker, job_id: str, attempt: int) -> bool:
        """Give a job that waits in its queue to the worker that says it runs it.

        A job its loss requeued, with the same attempt: as if never lost. Or a job it
        started from its buffer (attempt one past the job's) whose STARTED the broker never
        got (it restarted, or declared the worker lost): as if that STARTED had come. Never
        once it has been handed to another worker, started elsewhere, or ended: then the
        returning worker is told to cancel. A job deep in its queue is read from the store.
        """
        job = self.active.get(job_id) or self._load(job_id)
        if job is None or job.status != S.QUEUED or job_id in self._holders \
                or self._purged(job):
            return False
        orphan = self._orphans.get(job_id)
        if orphan is not None and orphan[:2] == (worker.group, attempt) \
                and job.attempts == attempt:
            del self._orphans[job_id]
            self.active[job_id] = job
            self._set_status(job, S.RUNNING)  # its entry in the ready heap is now stale
            job.worker = worker.group
            job.lost_count = orphan[2]
            timeout = self._timeout(job)
            if timeout is not None:
                left = (job.started_at or self.clock.wall()) + timeout - self.clock.wall()
                self._expire_at(max(left, 0.0) + self.config.attempt_grace_s, job, worker)
            self.events.emit(E.JOB_STARTED, self._job_event(job, resumed=True))
        elif worker.reports_starts and attempt == job.attempts + 1:
            self.active[job_id] = job
            self._start(job, worker)
        else:
            return False
        self._hold(job, worker)
        self.stats["reclaimed"] += 1
        log.info("job.reclaimed", job_id=job_id, worker=worker.name, attempt=attempt)
        return True

    def _current(self, worker: Worker, body: dict[str, Any]) -> Job | None:
        """The running job this message is about, if it is still this worker's attempt
        (or one its loss requeued and it can take back: a result sent after its READY).

        A job it held in its buffer starts here, if the worker says so before its STARTED
        arrived (a STARTED skipped because the result followed at once).
        """
        job = self.active.get(body["job_id"])
        if job is None:
            return None
        attempt = body.get("attempt")
        if job.status != S.RUNNING:
            if self._buffered(job, worker) and attempt in (None, job.attempts + 1):
                self._start(job, worker)
                return job
            reclaimed = isinstance(attempt, int) and self._reclaim(worker, job.id, attempt)
            return job if reclaimed else None
        if self._holders.get(job.id) is not worker:
            return None
        if attempt is not None and attempt != job.attempts:
            return None
        return job

    def _on_started(self, worker: Worker, body: dict[str, Any]) -> None:
        """A buffered job starts (`_current` does it); for a worker without a window,
        dispatch marked the job running already and STARTED only proves the worker has it."""
        self._current(worker, body)

    def _on_log(self, worker: Worker, body: dict[str, Any]) -> None:
        job = self._current(worker, body)
        if job is None:
            self.stats["dropped_logs"] += 1
            return
        job.log_lines += 1
        stream = "stderr" if body["stream"] == "stderr" else "stdout"
        ts = self.clock.wall()
        data = storable(body["data"])
        self.book.logs.append((job.id, job.log_lines, stream, data, ts))
        self._touch(job)
        self.events.emit(E.LOG, {
            "job_id": job.id, "queue": job.queue, "worker": worker.group,
            "stream": stream, "line": job.log_lines, "data": data,
        })

    def _on_progress(self, worker: Worker, body: dict[str, Any]) -> None:
        job = self._current(worker, body)
        if job is None:
            return
        message = body.get("message")
        progress = {"fraction": float(body["fraction"]),
                    "message": message if isinstance(message, str) else None}
        job.progress = p.pack(progress)
        self._touch(job)
        self.events.emit(E.JOB_PROGRESS, self._job_event(job, **progress))

    def _on_result(self, worker: Worker, body: dict[str, Any]) -> None:
        job = self._current(worker, body)
        self.workers.note_released(worker, body["job_id"])
        if job is None:
            self.stats["dropped_results"] += 1
            return
        problem = self._store_artifacts(job, body.get("artifacts"))
        if problem is not None:
            self.stats["incomplete_artifacts"] += 1
            body = {**body, "ok": False, "retry_in_s": None,
                    "error": job_error("ArtifactsIncomplete", problem)}
        if body["ok"]:
            worker.processed += 1
            self._finish(job, S.SUCCEEDED, result=blob(p.pack(body.get("result"))))
            return
        worker.failed += 1
        self._on_failure(job, body)

    def _on_failure(self, job: Job, body: dict[str, Any]) -> None:
        error = body.get("error")
        if not isinstance(error, dict):
            error = job_error("Error", str(error))
        if error.get("type") == "Cancelled":
            self._finish(job, S.CANCELLED, error=p.pack(error))
            return
        if error.get("type") in FINAL_ERRORS:
            self._finish(job, S.FAILED, error=p.pack(error))
            return
        retry = body.get("retry_in_s")
        self._fail_attempt(job, error, retry if isinstance(retry, int | float) else None)

    def _store_artifacts(self, job: Job, artifacts: Any) -> str | None:
        """Keep the artifacts a RESULT lists: inline (`data`) or sent before it in chunks.

        Returns why not, when a chunked one did not arrive whole; nothing is kept then.
        """
        if not artifacts and not self.transfers:
            return None  # the common case: none listed, none sent in chunks
        items = [item for item in artifacts if isinstance(item, dict)
                 and text_problem(item.get("name"), lim.ARTIFACT_NAME_MAX_LEN) is None
                 ] if isinstance(artifacts, list) else []
        chunked = [item for item in items if not isinstance(item.get("data"), bytes)]
        rows, problem = self.transfers.complete(job.id, job.attempts, chunked)
        if problem is not None:
            return problem
        for item in items:
            if isinstance(item.get("data"), bytes):
                content_type = item.get("content_type")
                if text_problem(content_type, lim.TASK_MAX_LEN) is not None:
                    content_type = DEFAULT_CONTENT_TYPE
                data = item["data"]
                rows.append((job.id, item["name"], str(content_type), len(data), data,
                             job.attempts))
        self.book.artifacts += rows
        return None

    def _on_artifact(self, worker: Worker, body: dict[str, Any]) -> None:
        """One chunk of an artifact, stored with this turn's commit; the RESULT follows."""
        job = self._current(worker, body)
        named = text_problem(body["name"], lim.ARTIFACT_NAME_MAX_LEN) is None \
            and text_problem(body.get("content_type") or "-", lim.TASK_MAX_LEN) is None
        row = None if job is None or not named else self.transfers.chunk(job.id, body)
        if row is None:
            self.stats["dropped_artifact_chunks"] += 1
            return
        self.book.chunks.append(row)

    def worker_oversized(self, identity: bytes, msg: p.WorkerMessage, limit: int) -> None:
        """A message over the size limit, of which only the ids were read: a RESULT fails its
        job with ResultTooLarge at once, anything else is dropped (and counted)."""
        self.stats["too_large"] += 1
        worker = self.workers.get(identity)
        if worker is None or msg.command != p.RESULT:
            return
        worker.last_seen = self.clock.mono()
        error = job_error("ResultTooLarge",
                          f"the result message exceeds the {limit} byte message limit")
        for body in msg.bodies:
            if isinstance(body.get("job_id"), str) and isinstance(body.get("attempt"), int):
                self._on_result(worker, {**body, "ok": False, "error": error})

    _WORKER_HANDLERS = {
        p.HEARTBEAT: lambda self, worker, body: None,
        p.STARTED: _on_started,
        p.LOG: _on_log,
        p.PROGRESS: _on_progress,
        p.RESULT: _on_result,
        p.ARTIFACT_CHUNK: _on_artifact,
    }

    # ------------------------------------------------------------ endings

    def _finish(self, job: Job, status: str, *, result: bytearray | None = None,
                error: bytes | None = None) -> None:
        """End the job, then settle the jobs that depend on it."""
        self._end(job, status, result=result, error=error)
        deps = self.deps
        if deps.dependents or deps.spilled:
            deps.settle(job.id, status)

    def _end(self, job: Job, status: str, *, result: bytearray | None = None,
             error: bytes | None = None) -> None:
        deps = self.deps
        if deps.awaiting:
            deps.forget(job.id)
        holder = self._holders.pop(job.id, None)
        if holder is not None and job.status == S.QUEUED:
            self._recall(job.id, holder)
        self._set_status(job, status)
        job.finished_at = self.clock.wall()
        job.result = result
        if error is not None:
            job.error = error
        self.active.pop(job.id, None)  # absent: it was in the store only (deep in its queue)
        self._remember(job)
        self.transfers.forget(job.id)
        if self._orphans:
            self._orphans.pop(job.id, None)
        self.finished.add(job.finished_at)
        by_outcome = self.finished_by.get(status)
        if by_outcome is not None:
            by_outcome.add(job.finished_at)
        self.stats[status] += 1
        extra: dict[str, Any] = {}
        if status == S.FAILED or (status == S.CANCELLED and job.depends_on is not None):
            extra["error"] = p.unpack(job.error) if job.error else None
        self.events.emit(STATE_EVENTS[status], self._job_event(job, **extra))
        self.waits.job_done(job, self.outbox)

    def _fail_attempt(self, job: Job, error: dict[str, Any], retry_in_s: float | None) -> None:
        if job.attempts > job.max_retries:
            self._finish(job, S.FAILED, error=p.pack(error))
            return
        delay = retry_in_s if retry_in_s is not None else self._backoff(job)
        job.error = p.pack(error)
        self.stats["retried"] += 1
        self._requeue(job, delay, reason="failed", error=error)

    def _backoff(self, job: Job) -> float:
        """Exponential, capped, with equal jitter (half fixed, half random)."""
        base = min(job.retry_backoff_s * 2 ** max(job.attempts - 1, 0),
                   self.config.retry_backoff_cap_s)
        return base / 2 + random.uniform(0, base / 2)

    def _recall(self, job_id: str, holder: Worker) -> None:
        """A job that ended while buffered on `holder`: its credit comes back now, and the
        worker drops it from its buffer (or stops it, if it started it meanwhile)."""
        if self.workers.note_released(holder, job_id):
            self.outbox.cancel_job(holder.identity, job_id)

    def _requeue(self, job: Job, delay_s: float, **why: Any) -> None:
        self._holders.pop(job.id, None)
        self._set_status(job, S.QUEUED)
        job.run_at = self.clock.wall() + delay_s if delay_s > 0 else None
        self.events.emit(E.JOB_RETRYING, self._job_event(job, next_attempt_at=job.run_at, **why))
        job.worker = None
        self._enqueue(job)

    def _drop_worker(self, worker: Worker, *, lost: bool, keep: set[str] | None = None) -> None:
        """Forget a worker; its running jobs go back to the queue (lost attempts counted),
        but those in `keep`, which its new registration holds. Jobs it only buffered go back
        as they were: they never started."""
        self.workers.remove(worker.identity)
        requeued = []
        for job_id in list(worker.running):
            job = self.active.get(job_id)
            if self._buffered(job, worker):
                self._unbuffer(job_id, worker)
                continue
            if job is None or job.status != S.RUNNING or (keep and job_id in keep) \
                    or self._holders.get(job_id) is not worker:
                continue
            requeued.append(job_id)
            self._lose_attempt(job, worker, lost)
        kind = E.WORKER_LOST if lost else E.WORKER_LEFT
        if worker.member:
            log.info(f"worker.slot_{'lost' if lost else 'left'}", worker=worker.name,
                     requeued=len(requeued))
            return
        self.events.emit(kind, {"worker": worker.name, "requeued": requeued})
        log.warning(kind, worker=worker.name, requeued=len(requeued)) if lost else \
            log.info(kind, worker=worker.name, requeued=len(requeued))

    def _lose_attempt(self, job: Job, worker: Worker, lost: bool) -> None:
        """A started job whose worker is gone: back to its queue (the loss counted if the
        worker was lost), or failed once it has lost too many attempts that way."""
        lost_before = job.lost_count
        if lost:
            job.lost_count += 1
        if job.lost_count > job.max_retries + self.config.lost_allowance:
            error = job_error("WorkerLost", f"worker {worker.group} was lost "
                              f"{job.lost_count} times running this job")
            self._finish(job, S.FAILED, error=p.pack(error))
            return
        if lost:
            self._orphans[job.id] = (worker.group, job.attempts, lost_before)
        self._requeue(job, 0, reason="worker_lost" if lost else "worker_left",
                      lost_worker=worker.group)

    def _expire_at(self, delay_s: float, job: Job, worker: Worker) -> None:
        heapq.heappush(self._expiries, (self.clock.mono() + delay_s, job.id, job.attempts,
                                        worker.name))

    def _expire_attempts(self, mono: float) -> None:
        """Attempts their worker has said nothing about for timeout + grace end here.

        A wedged worker (alive, heartbeating, but not finishing) cannot hold a
        job, nor the credit of a job it was told to cancel, forever.
        """
        heap = self._expiries
        while heap and heap[0][0] <= mono:
            _, job_id, attempt, name = heapq.heappop(heap)
            worker = self.workers.by_name(name)
            if worker is None or not self.workers.note_released(worker, job_id):
                continue
            self.outbox.cancel_job(worker.identity, job_id)
            job = self.active.get(job_id)
            if job is not None and job.status == S.RUNNING and job.attempts == attempt:
                self.stats["expired_attempts"] += 1
                log.warning("job.attempt_expired", job_id=job_id, worker=worker.name)
                self._fail_attempt(job, job_error("AttemptExpired", (
                    f"worker {worker.name} did not report on attempt {attempt} within its "
                    "timeout plus the grace period")), None)

    def worker_unreachable(self, identity: bytes, unsent_jobs: list[JobTuple] | None = None
                           ) -> None:
        """A send to this worker failed (ROUTER_MANDATORY): its identity is gone, now.

        `unsent_jobs` are the JOBs of the failed send: they never reached a worker, so they
        go back to their queue with the attempt undone and no loss counted. What it was
        sent before is lost as usual.
        """
        worker = self.workers.get(identity)
        if worker is None:
            return
        for job in unsent_jobs or ():
            self._undeliver(worker, job[0], job[3])
        self._drop_worker(worker, lost=True)

    def _undeliver(self, worker: Worker, job_id: str, attempt: int) -> None:
        if self._unbuffer(job_id, worker):
            return
        job = self.active.get(job_id)
        if job is None or job.status != S.RUNNING or job.attempts != attempt \
                or self._holders.get(job_id) is not worker \
                or not self.workers.note_released(worker, job_id):
            return
        job.attempts -= 1
        self.stats["undelivered"] += 1
        self._requeue(job, 0, reason="not_delivered", lost_worker=worker.name)

    # ------------------------------------------------------------ client actions

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self._live(job_id)
        stored = job is None  # deep in its queue: in the store only
        if stored:
            job = self.store.load_job(job_id)
        if job is None:
            raise CommandError(NOT_FOUND, f"no job {job_id}")
        if job.status in TERMINAL:
            raise CommandError(CONFLICT, f"job {job_id} is {job.status}: nothing to cancel")
        if stored and self._purged(job):
            self.purges.cancelled(job.queue)
        worker = self._holders.get(job.id)
        if job.status == S.RUNNING and worker is not None:
            self.outbox.cancel_job(worker.identity, job.id)
            self._expire_at(self.config.attempt_grace_s, job, worker)
        error = job_error("Cancelled", "cancelled by request")
        self._finish(job, S.CANCELLED, error=p.pack(error))
        return job.to_wire()

    def retry(self, job_id: str) -> dict[str, Any]:
        """Run a failed or cancelled job again (the dead-letter set's way back)."""
        job = self._load(job_id)
        if job is None:
            raise CommandError(NOT_FOUND, f"no job {job_id}")
        if job.status not in RETRYABLE:
            raise CommandError(CONFLICT, f"job {job_id} is {job.status}: only failed or "
                               "cancelled jobs can be retried")
        self.active[job.id] = job
        self._recent.pop(job.id, None)
        job.finished_at = None
        job.run_at = None
        job.lost_count = 0
        self.stats["rerun"] += 1
        self._requeue(job, 0, reason="rerun")
        return job.to_wire()

    # ------------------------------------------------------------ queue controls

    def configure_queue(self, name: str, *, paused: bool | None = None,
                        rate_limit: float | None = None) -> dict[str, Any]:
        """Change the queue's settings that are given (`rate_limit` 0 removes the limit);
        stored with the turn's commit and announced as `queue.updated`. Its settings."""
        if paused is None and rate_limit is None:
            return self.throttle.view(name)  # nothing to change: a read
        try:
            queue = self.throttle.configure(name, self.clock.mono(), paused=paused,
                                            rate_limit=rate_limit)
        except ValueError as exc:
            raise CommandError(BAD_REQUEST, str(exc)) from None
        self.book.queue_rows[name] = (name, int(queue.paused), queue.rate_limit)
        settings = queue.to_wire(name)
        self.events.emit(E.QUEUE_UPDATED, {"queue": name, "paused": queue.paused,
                                           "rate_limit": queue.rate_limit})
        log.info("queue.updated", queue=name, paused=queue.paused, rate_limit=queue.rate_limit)
        return settings

    def purge(self, name: str) -> int:
        """Cancel every job of the queue that waits to start (queued, scheduled or deferred),
        each with its `job.cancelled`; running jobs go on. Their dependents elsewhere are
        cancelled with `DependencyFailed`, as for any cancel. How many of the queue's jobs
        are cancelled: those in memory now, those deep in the queue (in the store only) a
        page per turn (`_purge_pages`), none of which starts meanwhile (`_purged`); less
        those a purge of the queue under way cancels already."""
        waiting = sum(self.counts[(name, status)] for status in PURGEABLE)
        pending = self.purges.left(name)
        held = [job for job in self.active.values() if job.queue == name]
        error = _purge_error(name)
        for job in held:
            if job.status in PURGEABLE:  # not already cancelled down a chain of this purge
                self._finish(job, S.CANCELLED, error=error)
        left = sum(self.counts[(name, status)] for status in PURGEABLE)  # in the store only
        if left:
            self.purges.begin(name, self._order, left, {
                job.id for job in held if job.status == S.RUNNING})
        log.info("queue.purged", queue=name, cancelled=waiting - pending, deep=left - pending)
        return waiting - pending

    def _purged(self, job: Job) -> bool:
        """Whether a purge under way is to cancel `job`, read from the store: it must not
        start, nor come into a window, before the purge's page cancels it."""
        return bool(self.purges) and self.purges.covers(job.queue, job.order, job.id)

    def _purge_pages(self) -> None:
        """A page of each purge under way: the next of its queue's waiting jobs in the store,
        read in and cancelled, a window's worth; done after a short page of each state."""
        size = self.config.queue_window
        for name, purge in list(self.purges.under_way.items()):
            error = _purge_error(name)
            page = self.store.purge_page(name, PURGE_ORDER[purge.stage], purge.after,
                                         purge.mark, size)
            for job in page:
                if not self._is_live(job.id) and job.id not in purge.spared:
                    self.active[job.id] = job
                    self._finish(job, S.CANCELLED, error=error)
                    self.purges.cancelled(name)
            if len(page) == size:
                purge.after = page[-1].id
            elif purge.stage + 1 < len(PURGE_ORDER):
                purge.stage, purge.after = purge.stage + 1, ""
            else:
                self.purges.finish(name)

    # ------------------------------------------------------------ time

    def tick(self) -> float:
        """Timers: due jobs, heartbeats, lost workers, expiries, wait timeouts.

        Returns the seconds until the next one is due.
        """
        mono, wall = self.clock.mono(), self.clock.wall()
        self.schedules.fire_due(wall)
        if self.purges:
            self._purge_pages()
        self._refill_due()
        for job_id in self.timeline.pop_due(wall):
            job = self.active.get(job_id)
            if job is not None and job.status in (S.SCHEDULED, S.QUEUED) \
                    and (job.run_at is None or job.run_at <= wall):
                if job.status == S.SCHEDULED:
                    self._set_status(job, S.QUEUED)
                self._make_ready(job)
        self._check_workers(mono)
        self._expire_attempts(mono)
        self.waits.expire(mono, self.lookup, self.outbox)
        self.throttle.refill(mono)
        return self._next_deadline(mono, wall)

    def _refill_due(self) -> None:
        """The next page of the jobs waiting for a time, if the timeline ran low."""
        if self.timeline.edge is None:
            return
        for job in self.backlog.refill_due(self._is_live):
            if not self._purged(job):  # else its purge's page cancels it in the store
                self.active[job.id] = job

    def _check_workers(self, mono: float) -> None:
        interval = self.config.heartbeat_interval_s
        for worker in self.workers:
            if mono - worker.last_seen > worker.expiry_s:
                self._drop_worker(worker, lost=True)
            elif mono - worker.last_sent >= interval:
                self.outbox.to_worker(worker.identity, p.HEARTBEAT)
                worker.last_sent = mono

    def _next_deadline(self, mono: float, wall: float) -> float:
        delay = self.config.heartbeat_interval_s / 2
        for due in (self.timeline.next_due(), self.schedules.next_due()):
            if due is not None:
                delay = min(delay, max(due - wall, 0.0))
        if self._expiries:
            delay = min(delay, max(self._expiries[0][0] - mono, 0.0))
        wait_due = self.waits.next_deadline()
        if wait_due is not None:
            delay = min(delay, max(wait_due - mono, 0.0))
        refill_s = self.throttle.next_refill_s(mono)
        if refill_s is not None:
            delay = min(delay, refill_s)
        if self._dispatch_from:
            delay = min(delay, max(self._dispatch_from - mono, 0.0))
        return 0.0 if self.purges else delay  # a purge goes on, a page per turn

    # ------------------------------------------------------------ commit

    def flush(self, may_wait: bool = False) -> bool:
        """Commit this turn's changes in one transaction, then answer the turn's submits.
        True when the turn's replies and events may go out; False when (`may_wait`: the
        broker loop's turns) the commit waits, DEFER_S at most (`CommitBook.deferred`): they
        then wait for it too.

        A failed commit costs the jobs the store would not take, never the broker: they
        (and every submit batch they belong to) are taken back from memory, their submits
        answered ERR, and the rest committed again. If the store cannot write at all, every
        new job of the turn is refused that way and the other changes stay buffered for the
        next turn's commit. Nothing acknowledged is lost: a submit is answered OK only after
        its jobs are committed.
        """
        book = self.book
        refused: Refused = {}
        if book.has_writes():
            if may_wait and book.deferred():
                return False
            refused = book.commit(self._order, self._evict)
        book.answer_submits(refused, self.outbox, self._wait_for_submit)
        self.waits.send_parts(self.outbox)
        if book.committed():
            self._leave_memory()
        return True

    def flush_due_s(self) -> float | None:
        """Seconds until a deferred commit is due (the loop's poll must wake by then)."""
        return self.book.due_s()

    def _leave_memory(self) -> None:
        """After a commit: the jobs past their window's edge, and what the windows hold past
        their size, leave memory (the store has them as they are); so do the deferred jobs
        past a window of them (found again through the store's dependency index)."""
        active = self.active
        limit = self.config.queue_window
        deps = self.deps
        if len(active) <= limit and not deps.spilled and not self.backlog.refused():
            return  # no window can be over its size: nothing to look at
        for job_id in self.backlog.drop(active, self._is_waiting):
            active.pop(job_id, None)
        if len(deps.awaiting) > limit * TRIM_AT:
            for job_id in deps.trim(limit):
                active.pop(job_id, None)
        elif deps.spilled:
            deps.spilled = self._deferred_total() > len(deps.awaiting)

    def _is_waiting(self, job: Job) -> bool:
        """Not held by a worker: in no buffer, not running."""
        return job.id not in self._holders

    def _evict(self, job: Job, reason: str) -> None:
        """Take back a job that was never stored, hence never acknowledged: it leaves memory
        entirely; a worker it was sent to this turn is told to cancel it; subscribers that
        saw it submitted see it cancelled."""
        self.book.dirty.pop(job.id, None)
        self.active.pop(job.id, None)
        self.deps.forget(job.id)
        self.deps.settle(job.id, S.CANCELLED)  # a job of this turn that depends on it
        self._count_new(job, -1)
        self.stats["submitted"] -= 1
        self.stats["refused"] += 1
        holder = self._holders.pop(job.id, None)
        if holder is not None:  # sent to a worker this turn, buffered or started
            self._recall(job.id, holder)
        error = job_error("NotStored", reason)
        self.events.emit(E.JOB_CANCELLED, {**self._job_event(job), "status": S.CANCELLED,
                                           "error": error})
        log.error("job.refused", job_id=job.id, reason=reason)

    def _wait_for_submit(self, held: HeldSubmit) -> None:
        """A committed SUBMIT with `wait`: answered as a WAIT for its jobs is."""
        self.wait_for(held.identity, held.request_id, held.ids, held.wait_s or 0.0,
                      single="id" in held.body, finished=self.ended_jobs(held.ids, held.outcome),
                      outcome=held.outcome)

    def ended_jobs(self, ids: list[str], outcome: bool = False) -> dict[str, dict[str, Any]]:
        """The client view of those of `ids` that have ended (unknown ones are absent)."""
        return self.settled(ids, outcome)[0]

    def settled(self, ids: list[str], outcome: bool = False
                ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Of `ids`: the client view of those that have ended, and those no job has. One
        store read for those not in memory (ended, or waiting deep in their queue)."""
        active = self.active
        rest = [job_id for job_id in ids if job_id not in active]
        if not rest:
            return {}, []
        found = self.lookup_many(rest, outcome)
        ended = {job_id: job for job_id, job in found.items() if job["status"] in TERMINAL}
        return ended, [job_id for job_id in rest if job_id not in found]

    def wait_for(self, identity: bytes, request_id: bytes, ids: list[str], timeout_s: float, *,
                 single: bool, finished: dict[str, dict[str, Any]], each: bool = False,
                 missing: list[str] | None = None, outcome: bool = False) -> None:
        """Answer `request_id` once every job of `ids` has ended (`finished`: those that
        have), or after `timeout_s`, as WAIT does: the job, or `{"jobs": [...]}`; with
        `each`, in parts as they end (`missing`: unknown ids, named in the first part)."""
        group = WaitGroup(identity, request_id, ids, self.clock.mono() + timeout_s, single,
                          each, missing, outcome)
        if self.waits.add(group, finished):
            group.answer(self.lookup, self.outbox)

    def forget_purged(self, purged: Counter[tuple[str, str]]) -> None:
        """Purged finished jobs leave the per-queue counts."""
        self.counts.subtract(purged)
        self.stats["purged"] += purged.total()

    # ------------------------------------------------------------ views

    def queue_depths(self) -> dict[str, dict[str, Any]]:
        """Jobs per queue and state, plus `unserved`: those of its queued jobs that no
        live worker can run (no worker serves the queue, or none has the task or flag), and
        its settings `paused` and `rate_limit`; a configured queue shows with no jobs."""
        depths: dict[str, dict[str, Any]] = {}
        for (queue, status), n in self.counts.items():
            row = depths.setdefault(queue, {s.value: 0 for s in JobState})
            row[status] = n
        for queue in self.throttle.settings:
            depths.setdefault(queue, {s.value: 0 for s in JobState})
        for row in depths.values():
            row["unserved"] = 0
        for queue, n in self.unserved().items():
            depths.setdefault(queue, {s.value: 0 for s in JobState})["unserved"] = n
        for queue, row in depths.items():
            settings = self.throttle.view(queue)
            row["paused"], row["rate_limit"] = settings["paused"], settings["rate_limit"]
        return depths

    def unserved(self) -> Counter[str]:
        """Queued jobs per queue that no live worker can run (none serves the queue with
        their task, or the flag their kind needs), in memory or deep in the store alike:
        from the counts per (queue, requirement), one check each, never a walk of jobs. A
        job a worker holds in its buffer is queued too, and served."""
        can_run = self.workers.any_can_run
        counts: Counter[str] = Counter()
        for (queue, need), n in self.queued_needs.items():
            if n > 0 and not can_run(queue, need):
                counts[queue] += n
        return counts

    def worker_views(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every live worker as clients see it (a worker and its sync slots as one), or the
        one named (by its name or a slot's)."""
        groups = self.workers.groups()
        if name is not None:
            peer = self.workers.by_name(name)
            wanted = peer.group if peer is not None else name
            groups = {wanted: groups[wanted]} if wanted in groups else {}
        mono = self.clock.mono()
        views = []
        for peers in groups.values():
            started = {j for w in peers for j in w.running
                       if (job := self.active.get(j)) is not None and job.status == S.RUNNING}
            views.append(group_view(peers, started, mono))
        return views

    def job_counts(self) -> dict[str, int]:
        totals = {s.value: 0 for s in JobState}
        for (_, status), n in self.counts.items():
            totals[status] += n
        return totals

    def throughput_history(self, window_s: int = 600) -> dict[str, Any]:
        """Jobs succeeded and failed in each second of the last `window_s`, oldest first,
        the second in progress last (`end` is the epoch second after it): jobs that ended
        a moment before a dashboard loaded are on its chart."""
        end = int(self.clock.wall()) + 1
        return {"end": end, "seconds": window_s,
                **{status: counter.series(end, window_s)
                   for status, counter in self.finished_by.items()}}

    def throughput_per_s(self, window_s: int = 60) -> float:
        """Jobs finished per second over the last `window_s` seconds."""
        return round(self.finished.total(self.clock.wall(), window_s) / window_s, 3)
