"""Client commands: decode the body, act on the engine, queue the reply."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zjobs.broker.core.engine import Engine
from zjobs.broker.core.schedules import build_schedule
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import BAD_REQUEST, NOT_FOUND, CommandError
from zjobs.broker.wire.jobs import RETRYABLE, TERMINAL, TERMINAL_IN_ORDER, dependencies
from zjobs.broker.wire.limits import is_number
from zjobs.broker.wire.schema import STATES, JobState
from zjobs.broker.wire.text import text_problem, texts_problem


@dataclass(slots=True)
class ServerInfo:
    events_endpoint: str
    version: str
    started_mono: float


# The longest text each named field may hold (broker.text's rule holds for all of them).
TEXT_MAX_LEN = {
    "id": lim.ID_MAX_LEN, "depends_on": lim.ID_MAX_LEN, "cursor": lim.ID_MAX_LEN,
    "queue": lim.QUEUE_MAX_LEN, "task": lim.TASK_MAX_LEN, "worker": lim.WORKER_NAME_MAX_LEN,
}


def _text(body: dict[str, Any], key: str, max_len: int | None = None) -> str:
    """A name, id or key: a string of 1 to `max_len` characters, no NUL, valid Unicode."""
    value: Any = body.get(key)  # a str once text_problem finds none
    problem = text_problem(value, max_len or TEXT_MAX_LEN[key])
    if problem is not None:
        raise CommandError(BAD_REQUEST, f"{key} {problem}")
    return value


def _int(body: dict[str, Any], key: str, default: int, low: int = 0, high: int = 2**62) -> int:
    """An integer field: below `low` is refused, above `high` is capped (a limit asked for
    beyond the maximum gets the maximum)."""
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(BAD_REQUEST, f"{key} must be an integer")
    if value < low:
        raise CommandError(BAD_REQUEST, f"{key} must be at least {low}, got {value}")
    return min(value, high)


def _opt_text(body: dict[str, Any], key: str) -> str | None:
    """An optional name, id or key: absent or nil is None; otherwise as `_text`."""
    return None if body.get(key) is None else _text(body, key)


def _cursor(engine: Engine, body: dict[str, Any]) -> str | None:
    """A page's `cursor`: the id of a job the broker holds (the last of the previous page).
    Anything else is refused, rather than read as "from the first page"."""
    cursor = _opt_text(body, "cursor")
    if cursor is not None and cursor not in engine.active and not engine.store.exists(cursor):
        raise CommandError(BAD_REQUEST, f"cursor {cursor[:40]!r} is no job's id: pass the "
                           "next_cursor of the previous page, or none for the first page")
    return cursor


def _next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    """The cursor after a page of `limit` rows read as `limit + 1`: None on the last page."""
    return rows[limit - 1]["id"] if len(rows) > limit else None


def _seconds(body: dict[str, Any], key: str, default: float, high: float) -> float:
    """A finite, non-negative number of seconds, capped at `high`."""
    value = body.get(key)
    if value is None:
        return default
    if not is_number(value):
        raise CommandError(BAD_REQUEST, f"{key} must be a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise CommandError(BAD_REQUEST, f"{key} must be a finite, non-negative number of "
                           f"seconds, got {value}")
    return min(float(value), high)


def _job_or_404(engine: Engine, job_id: str) -> dict[str, Any]:
    job = engine.lookup(job_id)
    if job is None:
        raise CommandError(NOT_FOUND, f"no job {job_id}")
    return job


def submit(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    jobs = body.get("jobs")
    if jobs is None:
        ids = engine.submit([body])
        return {"id": ids[0], "ids": ids}
    if not isinstance(jobs, list) or not jobs:
        raise CommandError(BAD_REQUEST, "jobs must be a non-empty list")
    return {"ids": engine.submit(jobs)}


def _submit_wait(body: Any) -> float | None:
    """SUBMIT's `wait`: seconds to hold the reply until the jobs end (checked before any job
    is created, so a bad one creates nothing)."""
    if not isinstance(body, dict) or body.get("wait") is None:
        return None
    return _seconds(body, "wait", lim.WAIT_MAX_S, lim.WAIT_MAX_S)


def get(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    return _job_or_404(engine, _text(body, "id"))


def list_jobs(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    """Newest first. `status` is one status or a list of them (any of which matches);
    `depends_on` keeps the jobs that depend on that job id."""
    filters = {key: _opt_text(body, key) for key in ("queue", "task", "worker", "depends_on")}
    statuses = _statuses(body.get("status"))
    cursor = _cursor(engine, body)
    limit = _int(body, "limit", lim.LIST_DEFAULT, 1, lim.LIST_MAX)
    stored = statuses - {JobState.RUNNING} if statuses else None
    rows = [] if stored == set() else engine.store.list(
        {**filters, "status": sorted(stored) if stored else None}, cursor, limit + 1)
    if statuses and JobState.RUNNING in statuses:  # never stored alone: live jobs are in memory
        rows = _newest_first(rows + _running(engine, filters, cursor, limit + 1))
    next_cursor = _next_cursor(rows, limit)
    jobs = engine.overlay(rows[:limit])
    if statuses:
        jobs = [j for j in jobs if j["status"] in statuses]
    return {"jobs": jobs, "next_cursor": next_cursor}


MAX_STATUSES = 64  # a status may come more than once (a set, as a client builds it)


def _statuses(value: Any) -> set[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or len(values) > MAX_STATUSES \
            or not all(isinstance(v, str) and v in STATES for v in values):
        raise CommandError(BAD_REQUEST, f"status must be one of {', '.join(STATES)}, "
                                        "or a list of them")
    return set(values)


def _running(engine: Engine, filters: dict[str, Any], cursor: str | None,
             limit: int) -> list[dict[str, Any]]:
    plain = {k: v for k, v in filters.items() if v is not None and k != "depends_on"}
    parent = filters.get("depends_on")
    matching = sorted(
        (job for job in engine.active.values() if job.status == JobState.RUNNING
         and all(getattr(job, k) == v for k, v in plain.items())
         and (parent is None or parent in dependencies(job))
         and (cursor is None or job.id < cursor)),
        key=lambda job: job.id, reverse=True)
    return [job.to_wire() for job in matching[:limit]]


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {row["id"]: row for row in rows}
    return [unique[job_id] for job_id in sorted(unique, reverse=True)]


def cancel(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    return engine.cancel(_text(body, "id"))


def retry(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    return engine.retry(_text(body, "id"))


def retry_many(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    """Re-run one page of the ended jobs that match (`failed` by default), newest first.

    A page per request keeps a turn short however many jobs failed; `next_cursor` goes on.
    A job that changed since the page was read (retried already) is skipped.
    """
    statuses = _statuses(body.get("status")) or {JobState.FAILED}
    if not statuses <= RETRYABLE:
        raise CommandError(BAD_REQUEST, "status must be failed, cancelled, or both")
    limit = _int(body, "limit", lim.LIST_MAX, 1, lim.LIST_MAX)
    rows = engine.store.list({"status": sorted(statuses), "queue": _opt_text(body, "queue")},
                             _cursor(engine, body), limit + 1)
    ids = []
    for row in rows[:limit]:
        try:
            engine.retry(row["id"])
        except CommandError:
            continue
        ids.append(row["id"])
    return {"retried": len(ids), "ids": ids, "next_cursor": _next_cursor(rows, limit)}


def logs(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    since = _int(body, "since", 0)
    limit = _int(body, "limit", lim.STREAM_PAGE_DEFAULT, 1, lim.STREAM_PAGE_MAX)
    job = _job_or_404(engine, _text(body, "id"))
    lines = engine.store.logs(job["id"], since, limit)
    return {
        "lines": lines, "status": job["status"], "done": job["status"] in TERMINAL,
        "next": lines[-1]["line"] if lines else since,
    }


def stats(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    """Counts and counters; with `history: true` also the per-second throughput of the last
    10 minutes (asked for by the dashboard, left out of the periodic `broker.stats`)."""
    counters = {key: engine.stats.get(key, 0) for key in (
        "submitted", *TERMINAL_IN_ORDER, "retried", "rerun",
        "dropped_results", "dropped_logs", "malformed", "too_large", "idempotent_hits",
        "purged", "expired_attempts", "unknown_worker_messages", "dropped_replies",
        "dropped_events", "refused", "busy",
    )}
    reply = {
        "jobs": engine.job_counts(), "queues": engine.queue_depths(),
        "workers": len(engine.workers.groups()), "counters": counters,
        "throughput_per_s": engine.throughput_per_s(), "seq": engine.events.last_seq,
        "uptime_s": round(time.monotonic() - info.started_mono, 3),
    }
    if body.get("history") is True:
        reply["history"] = engine.throughput_history()
    return reply


def ping(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    return {"pong": True, "events": info.events_endpoint, "version": info.version,
            "seq": engine.events.last_seq}


def workers(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    name = None if body.get("name") is None else _text(body, "name", lim.WORKER_NAME_MAX_LEN)
    found = engine.worker_views(name)
    if name is not None and not found:
        raise CommandError(NOT_FOUND, f"no live worker {name}")
    return {"workers": found}


def artifact(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    job = _job_or_404(engine, _text(body, "id"))
    if body.get("name") is None:
        return {"artifacts": engine.store.artifacts(job["id"])}
    name = _text(body, "name", lim.ARTIFACT_NAME_MAX_LEN)
    found = engine.store.artifact(job["id"], name)
    if found is None:
        raise CommandError(NOT_FOUND, f"job {job['id']} has no artifact {name}")
    return {"name": name, "content_type": found[0], "data": found[1]}


def schedule(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    """Create or replace the schedule `name`; the schedule."""
    try:
        built = build_schedule(body.get("name"), body, engine.clock.wall())
    except (TypeError, ValueError, OverflowError) as exc:
        raise CommandError(BAD_REQUEST, str(exc)) from None
    return engine.schedules.put(built, engine.clock.wall()).to_wire()


def schedules(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    """`{"schedules": [...]}`, or the one schedule `name`."""
    if body.get("name") is None:
        return {"schedules": [s.to_wire() for s in engine.schedules.all()]}
    name = _text(body, "name", lim.SCHEDULE_NAME_MAX_LEN)
    found = engine.schedules.get(name)
    if found is None:
        raise CommandError(NOT_FOUND, f"no schedule {name}")
    return found.to_wire()


def unschedule(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    name = _text(body, "name", lim.SCHEDULE_NAME_MAX_LEN)
    if not engine.schedules.remove(name):
        raise CommandError(NOT_FOUND, f"no schedule {name}")
    return {"removed": name}


def configure_queue(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    paused = body.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise CommandError(BAD_REQUEST, "paused must be true or false")
    rate = body.get("rate_limit")
    if rate is not None and (not is_number(rate) or not math.isfinite(rate) or rate < 0):
        raise CommandError(BAD_REQUEST, f"rate_limit must be a finite number of jobs per "
                           f"second, at least 0 (0 removes the limit), got {rate!r}")
    return engine.configure_queue(_text(body, "name", lim.QUEUE_MAX_LEN), paused=paused,
                                  rate_limit=rate)


def purge(engine: Engine, body: dict[str, Any], info: ServerInfo) -> Any:
    return {"cancelled": engine.purge(_text(body, "name", lim.QUEUE_MAX_LEN))}


Handler = Callable[[Engine, dict[str, Any], ServerInfo], Any]
STORED_SETTINGS = {p.QUEUE: "queue", p.SCHEDULE: "schedule"}  # answered after their commit

HANDLERS: dict[bytes, Handler] = {
    p.SUBMIT: submit, p.GET: get, p.LIST: list_jobs, p.CANCEL: cancel, p.RETRY: retry,
    p.LOGS: logs, p.STATS: stats, p.PING: ping, p.WORKERS: workers, p.ARTIFACT: artifact,
    p.SCHEDULE: schedule, p.SCHEDULES: schedules, p.UNSCHEDULE: unschedule,
    p.QUEUE: configure_queue, p.PURGE: purge, p.RETRY_MANY: retry_many,
}


def handle(engine: Engine, identity: bytes, request: p.ClientRequest, info: ServerInfo) -> None:
    """Run one client request; its reply (or error) goes to the engine's outbox."""
    try:
        if request.command == p.WAIT:
            _wait(engine, identity, request)
            return
        if request.command == p.EVENTS:
            engine.outbox.reply(identity, p.encode_reply_raw(request.request_id,
                                                             _events(engine, request.body)))
            return
        wait_s = _submit_wait(request.body) if request.command == p.SUBMIT else None
        result = HANDLERS[request.command](engine, request.body, info)
        if request.command == p.SUBMIT:  # answered once its jobs are committed
            engine.hold_submit_reply(identity, request.request_id, result, result["ids"], wait_s,
                                     request.body.get("fields") == "outcome")
            return
        if request.command in STORED_SETTINGS:  # likewise, once its row is
            key = (STORED_SETTINGS[request.command], result["name"])
            engine.hold_reply(identity, request.request_id, result, key)
            return
    except CommandError as exc:
        engine.outbox.reply(identity, p.encode_error(request.request_id, exc.code, exc.message))
        return
    engine.outbox.reply(identity, p.encode_reply(True, request.request_id, result))


def _events(engine: Engine, body: dict[str, Any]) -> bytes:
    since = _int(body, "since", 0)
    limit = _int(body, "limit", lim.STREAM_PAGE_DEFAULT, 1, lim.STREAM_PAGE_MAX)
    types = body.get("types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise CommandError(BAD_REQUEST, "types must be a list of strings")
        types = tuple(types)
    return engine.events.replay(since, types or None, limit)


def _wait(engine: Engine, identity: bytes, request: p.ClientRequest) -> None:
    body = request.body
    single = "ids" not in body
    ids = [_text(body, "id")] if single else body["ids"]
    if not isinstance(ids, list) or not ids:
        raise CommandError(BAD_REQUEST, "ids must be a non-empty list of job ids")
    problem = texts_problem(ids, lim.ID_MAX_LEN)
    if problem is not None:
        raise CommandError(BAD_REQUEST, f"ids: each job id {problem}")
    timeout = _seconds(body, "timeout", lim.WAIT_MAX_S, lim.WAIT_MAX_S)
    each = body.get("each") is True and not single
    outcome = body.get("fields") == "outcome"
    finished, missing = engine.settled(ids, outcome)
    if missing and not each:
        raise CommandError(NOT_FOUND, f"no job {missing[0]}")
    if missing:  # answered in parts: an unknown id is named in the first, not an error
        unknown = set(missing)
        ids = [i for i in ids if i not in unknown]
    engine.wait_for(identity, request.request_id, ids, timeout, single=single, finished=finished,
                    each=each, missing=missing, outcome=outcome)
