"""What each client operation asks the broker, written once for both clients (sans-IO).

An operation is a *plan*: a generator that yields steps and is sent what each
step got back. `Call` is one request (the checked reply body comes back),
`Batch` several pipelined (the bodies come back as a list, in order), `Live`
the next message of a SUB socket, and `Emit` an item a streaming operation
hands to its caller. The plans hold everything that is not I/O: request
bodies, validation, wait slicing and terminal checks, the replay-page loop,
the gap-free event cursor, the mapping of a terminal job to its result.

`Client` drives a plan with blocking calls and `AsyncClient` with `await`;
neither adds logic of its own. Each plan is also the public method's
definition: its name, parameters, docstring and annotation (`Plan[T]`: the
method returns a T; `Stream[T]`: it yields Ts) become `Client.<name>` and
`AsyncClient.<name>`, generated into methods.py by methods_gen.py, so the two
cannot drift apart and type checkers see both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import zmq

from zjobs.broker.client.functions import chunk_results, function_job, map_jobs, single_result
from zjobs.broker.client.models import validate_jobs
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import JobCancelled, JobFailed
from zjobs.broker.wire.jobs import TERMINAL, new_job_id
from zjobs.broker.wire.schema import SUBMITTED, JobState

DEFAULTS = {f.name: f.default for f in SUBMITTED if f.option}

SUBMIT_CHUNK = 2000
WAIT_SLICE_S = 30.0
RUN_FIRST_WAIT_S = 5.0  # how long `run`'s SUBMIT waits for the job before WAIT takes over
LOG_PAGE = 10_000
REPLAY_PAGE = 10_000
ALL_TYPES = ("job.", "log", "worker.")


@dataclass(slots=True)  # not frozen: a frozen dataclass is made three times slower, and
class Call:               # a Call is made for every request (nothing changes one after)
    """Send one request; the plan is sent the reply body (an ERR reply raises BrokerError)."""

    command: bytes
    body: Any
    timeout: float | None = None  # None: the client's timeout
    wait_s: float = 0.0  # how long the broker holds the request before it answers, on top


@dataclass(slots=True, frozen=True)
class Batch:
    """Send all of `calls` before reading any reply; the plan is sent the bodies, in order."""

    calls: tuple[Call, ...]


@dataclass(slots=True, frozen=True)
class Live:
    """Wait for the next message on `sub`; the plan is sent its frames (one or more events)."""

    sub: zmq.Socket


T = TypeVar("T")
X = TypeVar("X")  # what `map` is given, item by item
R = TypeVar("R")  # what `map`'s function returns


@dataclass(slots=True, frozen=True)
class Emit(Generic[T]):
    """Hand `item` to the caller of a streaming operation; the plan is sent None."""

    item: T


Step = Call | Batch | Live
# A call plan: it yields steps, is sent their replies and returns the operation's value, T.
Plan = Generator[Step, Any, T]
# A stream plan: it also yields the items (of type T) its caller iterates over.
Stream = Generator[Step | Emit[T], Any, None]
PlanFunction = TypeVar("PlanFunction", bound=Callable[..., Generator[Any, Any, Any]])


def call(plan: PlanFunction) -> PlanFunction:
    """Mark `plan` as an operation that returns one value (a coroutine on AsyncClient)."""
    plan.__plan__ = "call"  # type: ignore[attr-defined]  # a marker read by operations()
    return plan


def stream(plan: PlanFunction) -> PlanFunction:
    """Mark `plan` as an operation that yields items (an async iterator on AsyncClient)."""
    plan.__plan__ = "stream"  # type: ignore[attr-defined]  # a marker read by operations()
    return plan


def operations() -> Iterator[tuple[str, Callable[..., Generator[Any, Any, Any]], str]]:
    """Every operation of `Plans`: its name, its plan and whether it is a call or a stream."""
    for name, plan in vars(Plans).items():
        kind = getattr(plan, "__plan__", None)
        if kind is not None:
            yield name, plan, kind


def returning(plan: Plan[T]) -> Stream[T]:
    """A call plan as a stream of one item: its value."""
    yield Emit((yield from plan))


class Steps(Generic[T]):
    """The steps of one plan, for a driver: what the driver sets `reply` to is sent on."""

    def __init__(self, plan: Stream[T]) -> None:
        self.plan = plan
        self.reply: Any = None

    def __iter__(self) -> Iterator[Step | Emit[T]]:
        try:
            while True:
                reply, self.reply = self.reply, None
                try:
                    step = self.plan.send(reply)
                except StopIteration:
                    return
                yield step
        finally:
            self.plan.close()  # its own cleanup runs now (a SUB socket closes), not at GC


class EventCursor:
    """Turns replayed and live events into one stream without gaps or duplicates."""

    def __init__(self, since: int, types: tuple[str, ...]) -> None:
        self.last = since
        self.types = types

    def accept(self, event: dict[str, Any]) -> bool:
        """True if `event` is the next one; False if already seen. Raises LookupError on a gap."""
        seq = event["seq"]
        if seq <= self.last:
            return False
        if seq != self.last + 1:
            raise LookupError(seq)
        self.last = seq
        return True

    def replayed(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        """The wanted events of a replay page not seen yet (a truncated page starts late)."""
        fresh = [e for e in page["events"] if e["seq"] > self.last]
        if fresh:
            self.last = fresh[-1]["seq"]
        return [e for e in fresh if self.wanted(e)]

    def wanted(self, event: dict[str, Any]) -> bool:
        return event["type"].startswith(self.types)


def job_dict(task: str, args: tuple, kwargs: dict[str, Any], options: dict[str, Any]) -> dict:
    """The job's body: the options given and not their defaults (the broker applies those)."""
    job: dict[str, Any] = {"task": task, "args": list(args)}
    if kwargs:
        job["kwargs"] = kwargs
    for name, value in options.items():
        if value is not None and value != DEFAULTS.get(name):
            job[name] = value
    return job


def task_job(task: str, args: tuple, kwargs: dict[str, Any], options: dict[str, Any]) -> dict:
    """A validated wire job running `task(*args, **kwargs)`, with the options given."""
    return validate_jobs([job_dict(task, args, kwargs, options)])[0]


def exec_job(entry: str, code_files: dict[str, bytes], input_files: dict[str, bytes] | None,
             args: list[str] | None, env: dict[str, str] | None, timeout_s: float | None,
             runtime: str | None, net_policy: str, options: dict[str, Any]) -> dict:
    spec = {"entry": entry, "args": list(args or []), "env": dict(env or {}),
            "timeout_s": timeout_s, "runtime": runtime, "net_policy": net_policy,
            "code_files": code_files, "input_files": dict(input_files or {})}
    # the attempt's limit (a backstop a little after the program's own) is the broker's call
    return {"kind": "exec", "spec": spec, **options}


def chunks(jobs: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Validated batches of at most SUBMIT_CHUNK jobs."""
    batch: list[dict[str, Any]] = []
    for job in jobs:
        batch.append(job)
        if len(batch) >= SUBMIT_CHUNK:
            yield validate_jobs(batch)
            batch = []
    if batch:
        yield validate_jobs(batch)


def all_terminal(reply: dict[str, Any]) -> bool:
    """Whether a WAIT reply (one job, or `{"jobs": [...]}`) holds only ended jobs."""
    jobs = reply["jobs"] if "jobs" in reply else [reply]
    return all(job["status"] in TERMINAL for job in jobs)


def terminal(job: dict[str, Any]) -> dict[str, Any]:
    if job["status"] not in TERMINAL:
        raise TimeoutError(f"job {job['id']} is still {job['status']}")
    return job


def outcome(job: dict[str, Any]) -> Any:
    """The result of a terminal job, or the matching exception."""
    status = terminal(job)["status"]
    if status == JobState.FAILED:
        raise JobFailed(job)
    if status == JobState.CANCELLED:
        raise JobCancelled(job)
    if job.get("kind") == "function":
        return single_result(job)
    return job["result"]


def chained(jobs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`jobs` with ids, each also depending on the one before it."""
    linked: list[dict[str, Any]] = []
    for job in jobs:
        job = {**job, "id": job.get("id") or new_job_id()}
        if linked:
            job["depends_on"] = [*(job.get("depends_on") or ()), linked[-1]["id"]]
        linked.append(job)
    return linked


def without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class Plans:
    """The client operations as plans; `Client` and `AsyncClient` run them.

    `subscriber(endpoint)` opens a SUB socket of the client's kind (blocking or
    asyncio), subscribed to every event; `clock` is monotonic seconds.
    """

    def __init__(self, events_endpoint: str | None, subscriber: Callable[[str], zmq.Socket],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.events_endpoint = events_endpoint
        self.subscriber = subscriber
        self.clock = clock

    # ------------------------------------------------------------ submit

    @call
    def submit(self, task: str, *args: Any, queue: str = "default", priority: int = 0,
               timeout_s: float | None = None, max_retries: int = 0,
               retry_backoff_s: float = 1.0, run_at: Any = None,
               idempotency_key: str | None = None, depends_on: list[str] | None = None,
               **kwargs: Any) -> Plan[str]:
        """Submit `task(*args, **kwargs)`; the job id. The options are keyword-only.

        `depends_on`: ids of jobs that must succeed first (the job is `deferred` until then).
        """
        job = task_job(task, args, kwargs, {
            "queue": queue, "priority": priority, "timeout_s": timeout_s,
            "max_retries": max_retries, "retry_backoff_s": retry_backoff_s, "run_at": run_at,
            "idempotency_key": idempotency_key, "depends_on": depends_on})
        return (yield Call(p.SUBMIT, job))["id"]

    @call
    def run(self, task: str, *args: Any, timeout: float | None = None, queue: str = "default",
            priority: int = 0, timeout_s: float | None = None, max_retries: int = 0,
            retry_backoff_s: float = 1.0, run_at: Any = None,
            idempotency_key: str | None = None, depends_on: list[str] | None = None,
            **kwargs: Any) -> Plan[Any]:
        """Submit `task(*args, **kwargs)` and return its result, as `result(submit(...))`
        does, in one round trip: the SUBMIT itself waits for the job to end (`timeout` as
        for `result`). Raises JobFailed, JobCancelled or TimeoutError."""
        job = task_job(task, args, kwargs, {
            "queue": queue, "priority": priority, "timeout_s": timeout_s,
            "max_retries": max_retries, "retry_backoff_s": retry_backoff_s, "run_at": run_at,
            "idempotency_key": idempotency_key, "depends_on": depends_on})
        end = None if timeout is None else self.clock() + timeout
        # a short first wait: a SUBMIT is never resent, so a broker restart must not cost
        # a long wait; a job that takes longer is waited for with WAIT, which is resent
        first = RUN_FIRST_WAIT_S if timeout is None else min(timeout, RUN_FIRST_WAIT_S)
        done = yield Call(p.SUBMIT, {**job, "wait": first, "fields": "outcome"}, wait_s=first)
        if done["status"] not in TERMINAL and (end is None or self.clock() < end):
            left = None if end is None else max(end - self.clock(), 0.0)
            done = yield from self._wait({"id": done["id"], "fields": "outcome"}, left)
        return outcome(done)

    @call
    def submit_many(self, jobs: Iterable[dict[str, Any]]) -> Plan[list[str]]:
        """Submit many jobs (dicts shaped like the REST body); the ids, in order.

        One round trip per batch of 2,000, the batches pipelined.
        """
        replies = yield Batch(tuple(Call(p.SUBMIT, {"jobs": chunk}) for chunk in chunks(jobs)))
        return [job_id for reply in replies for job_id in reply["ids"]]

    @call
    def chain(self, jobs: Iterable[dict[str, Any]]) -> Plan[list[str]]:
        """Submit jobs (dicts as for `submit_many`) each depending on the one before; the ids.

        Each job gets its id here (unless it has one), so the chain is one request.
        """
        return (yield from self.submit_many(chained(jobs)))

    @call
    def submit_validated(self, jobs: list[dict[str, Any]]) -> Plan[list[str]]:
        """Submit jobs already validated (the API's pydantic models) in one request; the ids."""
        return (yield Call(p.SUBMIT, {"jobs": jobs}))["ids"]

    @call
    def submit_function(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Plan[str]:
        """Run `fn(*args, **kwargs)` on a worker started with --allow-pickle; `result` unpickles."""
        return (yield from self.submit_many([function_job(fn, [(args, kwargs)], {})]))[0]

    @call
    def submit_exec(self, entry: str, code_files: dict[str, bytes], *,
                    input_files: dict[str, bytes] | None = None, args: list[str] | None = None,
                    env: dict[str, str] | None = None, timeout_s: float | None = None,
                    runtime: str | None = None, net_policy: str = "inherit",
                    **options: Any) -> Plan[str]:
        """Run a program and its files on a worker started with --allow-exec; the job id."""
        job = exec_job(entry, code_files, input_files, args, env, timeout_s, runtime,
                       net_policy, options)
        return (yield from self.submit_many([job]))[0]

    @call
    def map(self, fn: Callable[[X], R], iterable: Iterable[X], *, queue: str = "default",
            chunksize: int = 1, timeout: float | None = None) -> Plan[list[R]]:
        """`[fn(x) for x in iterable]` on the cluster, in input order.

        An exception in one item raises FunctionError with its index and the remote traceback.
        """
        jobs, starts = map_jobs(fn, iterable, chunksize, {"queue": queue})
        if not jobs:
            return []
        done = yield from self.wait_many((yield from self.submit_many(jobs)), timeout)
        return [value for job, start in zip(done, starts, strict=True)
                for value in chunk_results(job, start)]

    # ------------------------------------------------------------ inspect and act

    @call
    def get(self, job_id: str) -> Plan[dict[str, Any]]:
        """The job as a dict."""
        return (yield Call(p.GET, {"id": job_id}))

    @call
    def cancel(self, job_id: str) -> Plan[dict[str, Any]]:
        """Cancel the job (a running one is stopped); the job."""
        return (yield Call(p.CANCEL, {"id": job_id}))

    @call
    def retry(self, job_id: str) -> Plan[dict[str, Any]]:
        """Run an ended job again, same id; the job."""
        return (yield Call(p.RETRY, {"id": job_id}))

    @call
    def retry_all(self, status: str | Sequence[str] = "failed",
                  queue: str | None = None) -> Plan[int]:
        """Run again every job that ended `status` (failed, cancelled or both), of `queue` or
        of all queues, a page per request; how many were re-run."""
        body = without_none({"status": status, "queue": queue})
        retried = 0
        while True:
            page = yield Call(p.RETRY_MANY, body)
            retried += page["retried"]
            if page["next_cursor"] is None:
                return retried
            body["cursor"] = page["next_cursor"]

    @call
    def list_page(self, **query: Any) -> Plan[dict[str, Any]]:
        """One page of LIST: `{"jobs": [...], "next_cursor": str | None}`."""
        return (yield Call(p.LIST, without_none(query)))

    @call
    def dead_letters(self, queue: str | None = None,
                     limit: int = 100) -> Plan[list[dict[str, Any]]]:
        """Failed jobs whose retries are spent: inspect them, then `retry` the ones to re-run."""
        return (yield from self.list(status=JobState.FAILED, queue=queue, limit=limit))

    # ------------------------------------------------------------ wait

    @call
    def wait(self, job_id: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """The job once terminal; TimeoutError if it has not ended within `timeout` seconds."""
        return terminal((yield from self._wait({"id": job_id}, timeout)))

    @call
    def poll(self, job_id: str, timeout: float) -> Plan[dict[str, Any]]:
        """The job once terminal, or as it is after `timeout` seconds (no exception)."""
        return (yield from self._wait({"id": job_id}, timeout))

    @call
    def wait_many(self, ids: Iterable[str],
                  timeout: float | None = None) -> Plan[list[dict[str, Any]]]:
        """Every job of `ids` once all are terminal (or at `timeout`), in order."""
        return (yield from self._wait({"ids": list(ids)}, timeout))["jobs"]

    @call
    def result(self, job_id: str, timeout: float | None = None) -> Plan[Any]:
        """The job's result; raises JobFailed, JobCancelled, or TimeoutError."""
        return outcome(terminal((yield from self._wait({"id": job_id, "fields": "outcome"},
                                                       timeout))))

    def _wait(self, body: dict[str, Any], timeout: float | None) -> Plan[dict[str, Any]]:
        """WAIT in slices of at most WAIT_SLICE_S, each answered within the client's timeout
        after the slice."""
        end = None if timeout is None else self.clock() + timeout
        while True:
            left = WAIT_SLICE_S if end is None else max(min(end - self.clock(), WAIT_SLICE_S), 0)
            reply = yield Call(p.WAIT, {**body, "timeout": left}, wait_s=left)
            if all_terminal(reply) or (end is not None and self.clock() >= end):
                return reply

    # ------------------------------------------------------------ logs and artifacts

    @call
    def logs(self, job_id: str, since: int = 0) -> Plan[list[dict[str, Any]]]:
        """Every log line of the job after line `since`, page by page."""
        lines: list[dict[str, Any]] = []
        while True:
            page = yield from self.logs_page(job_id, since, LOG_PAGE)
            lines += page["lines"]
            if len(page["lines"]) < LOG_PAGE:
                return lines
            since = page["next"]

    @call
    def logs_page(self, job_id: str, since: int = 0, limit: int = LOG_PAGE) -> Plan[dict[str, Any]]:
        """Up to `limit` lines after `since`: `{"lines", "next", "status", "done"}`."""
        return (yield Call(p.LOGS, {"id": job_id, "since": since, "limit": limit}))

    @call
    def artifacts(self, job_id: str) -> Plan[list[dict[str, Any]]]:
        """The artifacts an `exec` job wrote: name, size and content type of each."""
        return (yield Call(p.ARTIFACT, {"id": job_id}))["artifacts"]

    @call
    def download(self, job_id: str, name: str) -> Plan[dict[str, Any]]:
        """One artifact: `{"name", "content_type", "data"}` (`data` is bytes)."""
        return (yield Call(p.ARTIFACT, {"id": job_id, "name": name}))

    # ------------------------------------------------------------ queues

    @call
    def configure_queue(self, name: str, *, paused: bool | None = None,
                        rate_limit: float | None = None) -> Plan[dict[str, Any]]:
        """Change what is given: `paused` (a paused queue takes jobs but starts none),
        `rate_limit` (job starts per second over all workers; 0 removes it). The queue's
        settings: `{"name", "paused", "rate_limit"}`."""
        body = without_none({"name": name, "paused": paused, "rate_limit": rate_limit})
        return (yield Call(p.QUEUE, body))

    @call
    def purge(self, name: str) -> Plan[int]:
        """Cancel every job of the queue that waits to start; how many were cancelled."""
        return (yield Call(p.PURGE, {"name": name}))["cancelled"]

    # ------------------------------------------------------------ cluster

    @call
    def stats(self) -> Plan[dict[str, Any]]:
        """Queue depths, workers, counters."""
        return (yield Call(p.STATS, {}))

    @call
    def stats_with_history(self) -> Plan[dict[str, Any]]:
        """`stats()` and `history`: the jobs that succeeded and failed in each second of the
        last 10 minutes (for a chart that a reload does not reset)."""
        return (yield Call(p.STATS, {"history": True}))

    @call
    def workers(self, name: str | None = None) -> Plan[list[dict[str, Any]]]:
        """The live workers, or the one called `name` (BrokerError `not_found` if none)."""
        return (yield Call(p.WORKERS, without_none({"name": name})))["workers"]

    @call
    def ping(self, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """The broker's events endpoint, version and last event seq."""
        return (yield Call(p.PING, {}, timeout))

    # ------------------------------------------------------------ schedules

    @call
    def schedule(self, name: str, task: str, *args: Any, cron: str | None = None,
                 every_s: float | None = None, queue: str = "default", priority: int = 0,
                 timeout_s: float | None = None, max_retries: int = 0,
                 **kwargs: Any) -> Plan[dict[str, Any]]:
        """Create or replace the schedule `name`: submit `task(*args, **kwargs)` on the
        5-field UTC `cron` expression or every `every_s` seconds; the schedule."""
        body = {"name": name, "task": task, "args": list(args), "kwargs": kwargs,
                "cron": cron, "every_s": every_s, "queue": queue, "priority": priority,
                "timeout_s": timeout_s, "max_retries": max_retries}
        return (yield Call(p.SCHEDULE, without_none(body)))

    @call
    def schedule_put(self, name: str, body: dict[str, Any]) -> Plan[dict[str, Any]]:
        """Create or replace the schedule `name` from a REST-shaped body; the schedule."""
        return (yield Call(p.SCHEDULE, {**body, "name": name}))

    @call
    def schedules(self) -> Plan[list[dict[str, Any]]]:
        """Every schedule, by name."""
        return (yield Call(p.SCHEDULES, {}))["schedules"]

    @call
    def get_schedule(self, name: str) -> Plan[dict[str, Any]]:
        """One schedule (BrokerError `not_found` if there is none)."""
        return (yield Call(p.SCHEDULES, {"name": name}))

    @call
    def unschedule(self, name: str) -> Plan[None]:
        """Remove the schedule `name` (BrokerError `not_found` if there is none)."""
        yield Call(p.UNSCHEDULE, {"name": name})

    # ------------------------------------------------------------ events

    @call
    def replay(self, since: int, types: tuple[str, ...] | None = None,
               limit: int = REPLAY_PAGE) -> Plan[dict[str, Any]]:
        """One page of the broker's event window after `since`.

        `{"events", "last", "more", "truncated"}`: `last` is the seq to ask from next.
        """
        body = {"since": since, "limit": limit, "types": list(types) if types else None}
        return (yield Call(p.EVENTS, without_none(body)))

    @stream
    def replay_pages(self, since: int,
                     types: tuple[str, ...] | None = None) -> Stream[dict[str, Any]]:
        """Every page of `replay` from `since` until the broker holds no more."""
        yield from self._paged(since, types, lambda page: [page])

    @stream
    def events(self, types: tuple[str, ...] = ALL_TYPES,
               since: int | None = None) -> Stream[dict[str, Any]]:
        """Events replayed from `since` (None: from now), then live; no gap, no duplicate."""
        endpoint = self.events_endpoint or (yield from self.ping())["events"]
        with self.subscriber(endpoint) as sub:  # before asking where the bus is: none missed
            start = (yield from self.ping())["seq"] if since is None else since
            cursor = EventCursor(start, tuple(types))
            cursor.last = yield from self._paged(cursor.last, None, cursor.replayed)
            while True:
                yield from self._live(cursor, (yield Live(sub)))

    def _live(self, cursor: EventCursor, frames: list[bytes]) -> Stream[dict[str, Any]]:
        """Emit the wanted events of one PUB message not seen yet, filling any gap first."""
        try:
            events = p.decode_events(frames)
        except p.ProtocolError:
            return  # dropped (docs/protocol.md 10): the next message shows the gap it left
        for event in events:
            try:
                fresh = cursor.accept(event)
            except LookupError:  # the SUB socket dropped some: the broker's window has them
                cursor.last = yield from self._paged(cursor.last, None, cursor.replayed)
                continue
            if fresh and cursor.wanted(event):
                yield Emit(event)

    def _paged(self, since: int, types: tuple[str, ...] | None,
               items: Callable[[dict[str, Any]], Iterable[T]],
               ) -> Generator[Step | Emit[T], Any, int]:
        """Emit `items(page)` of each replay page from `since`; the seq the replay ended at."""
        while True:
            page = yield from self.replay(since, types)
            for item in items(page):
                yield Emit(item)
            since = max(since, page["last"])
            if not page["more"]:
                return since

    # ------------------------------------------------------------ list, last
    # (a method named `list` hides the builtin from the annotations after it, for mypy)

    @call
    def list(self, status: str | Sequence[str] | None = None, queue: str | None = None,
             limit: int = 100, **filters: Any) -> Plan[list[dict[str, Any]]]:
        """Jobs, newest first; `status` may be a list (any of them)."""
        body = without_none({"status": status, "queue": queue, "limit": limit, **filters})
        return (yield Call(p.LIST, body))["jobs"]
