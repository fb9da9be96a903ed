"""Schedules: named jobs the broker submits itself, on a cron expression or every N seconds.

`ScheduleBook` holds every schedule and a heap of their next due times, so
the broker loop looks at the earliest one only (`fire_due`, `next_due`), never
scans them all. A firing submits one job with the idempotency key
`schedule:<name>:<slot>`, the slot being the epoch second it was due: with
that key in the store, a slot fires at most once, across restarts and
failovers. After downtime only the latest missed slot fires (never one job per
missed slot): the firing is for the latest slot not after now, and the next
due time is the first slot after now.

Slots do not depend on when a schedule was created or last fired, so any
broker computes the same ones: cron slots are those of the expression (UTC),
`every_s` slots the multiples of `every_s` since the epoch (every 60 s fires on
the minute). Changes are buffered and written with the turn's commit.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import structlog
from croniter import CroniterBadDateError, croniter

from zjobs.broker.core.events import EventLog
from zjobs.broker.core.submit import build_job
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.schedule import JOB_KEYS, Schedule
from zjobs.broker.wire.schema import EventType
from zjobs.broker.wire.text import check_text

log = structlog.get_logger(__name__)

NAME_MAX_LEN = lim.SCHEDULE_NAME_MAX_LEN
def slot_text(slot: float) -> str:
    """A slot as its key shows it: whole seconds without a fraction."""
    return str(int(slot)) if float(slot).is_integer() else repr(float(slot))


def idempotency_key(name: str, slot: float) -> str:
    return f"schedule:{name}:{slot_text(slot)}"


def check_name(name: Any) -> str:
    return check_text(name, "name", NAME_MAX_LEN)


def check_cron(expr: Any) -> str:
    """A standard 5-field cron expression; ValueError with the parser's message otherwise."""
    if not isinstance(expr, str):
        raise ValueError("cron must be a string")
    check_text(expr, "cron", lim.CRON_MAX_LEN)
    if len(expr.split()) != 5:
        raise ValueError(f"cron must have 5 fields (minute hour day month weekday), "
                         f"got {expr!r}")
    try:
        croniter(expr)
    except (ValueError, KeyError) as exc:  # CroniterError is a ValueError
        raise ValueError(f"bad cron expression {expr!r}: {exc}") from None
    return expr


def check_every(every_s: Any) -> float:
    """Seconds between firings: finite, from `EVERY_MIN_S` (1 s) to `EVERY_MAX_S` (a year)."""
    if isinstance(every_s, bool) or not isinstance(every_s, int | float):
        raise ValueError("every_s must be a number of seconds")
    try:
        seconds = float(every_s)
    except OverflowError:  # an int past a float's range
        seconds = math.inf
    if not lim.EVERY_MIN_S <= seconds <= lim.EVERY_MAX_S:  # False for NaN too
        raise ValueError(f"every_s must be a number of seconds from {lim.EVERY_MIN_S:g} to "
                         f"{lim.EVERY_MAX_S:.0f} (a year; longer: use cron), got {seconds:.6g}")
    return seconds


def check_fires(schedule: Schedule, now: float) -> None:
    """ValueError if the schedule never fires: a cron date that does not exist (`0 0 31 2 *`,
    the 31st of February) would be stored, then fail every computation of its next slot."""
    try:
        schedule.slot_after(now)
    except CroniterBadDateError:
        raise ValueError(f"cron {schedule.cron!r} never fires: no date matches it") from None


def build_schedule(name: Any, body: dict[str, Any], now: float) -> Schedule:
    """A schedule from a request body; ValueError/TypeError naming what is wrong.

    The job is checked as a submitted one is, so every firing can be submitted.
    """
    name = check_name(name)
    cron, every_s = body.get("cron"), body.get("every_s")
    if (cron is None) == (every_s is None):
        raise ValueError("give exactly one of cron and every_s")
    cron = check_cron(cron) if cron is not None else None
    every_s = check_every(every_s) if every_s is not None else None
    job = {key: body.get(key) for key in JOB_KEYS}
    built = build_job({k: v for k, v in job.items() if v is not None}, now)
    if built.kind != "task" or built.task is None:
        raise ValueError("task must be a registered task's name")
    job.update(args=list(job["args"] or []), kwargs=dict(job["kwargs"] or {}),
               queue=built.queue, priority=built.priority, timeout_s=built.timeout_s,
               max_retries=built.max_retries)
    schedule = Schedule(name, job, cron, every_s, now)
    check_fires(schedule, now)
    return schedule


# submit(job spec, schedule name) -> the new job's id, or None if its slot had a job already
Submitter = Callable[[dict[str, Any], str], "str | None"]


class ScheduleBook:
    """Every schedule, the heap of their due times, and the changes the next commit writes."""

    def __init__(self, schedules: list[Schedule], events: EventLog, submit: Submitter) -> None:
        self.events = events
        self._submit = submit
        self._by_name: dict[str, Schedule] = {}
        self._heap: list[tuple[float, str, int]] = []  # (due, name, version)
        self._upserts: dict[str, Schedule] = {}
        self._deletes: set[str] = set()
        for schedule in schedules:
            self._by_name[schedule.name] = schedule
            self._push(schedule)

    def __len__(self) -> int:
        return len(self._by_name)

    def _push(self, schedule: Schedule) -> None:
        heapq.heappush(self._heap, (schedule.next_run_at, schedule.name, schedule.version))

    def _changed(self, schedule: Schedule) -> None:
        self._upserts[schedule.name] = schedule
        self._deletes.discard(schedule.name)

    # ------------------------------------------------------------ commands

    def put(self, schedule: Schedule, now: float) -> Schedule:
        """Create or replace; its first due time is the first slot after now."""
        old = self._by_name.get(schedule.name)
        if old is not None:
            schedule.version = old.version + 1
            schedule.last_run_at = old.last_run_at
        schedule.next_run_at = schedule.slot_after(now)
        self._by_name[schedule.name] = schedule
        self._push(schedule)
        self._changed(schedule)
        return schedule

    def get(self, name: str) -> Schedule | None:
        return self._by_name.get(name)

    def all(self) -> list[Schedule]:
        return sorted(self._by_name.values(), key=lambda s: s.name)

    def refuse(self, name: str) -> None:
        """The store will not take this schedule's row: forget the change and the schedule
        (a stored version comes back at the next start)."""
        self._upserts.pop(name, None)
        self._by_name.pop(name, None)

    def remove(self, name: str) -> bool:
        """Forget it (its heap entry goes stale); False if there is none."""
        if self._by_name.pop(name, None) is None:
            return False
        self._upserts.pop(name, None)
        self._deletes.add(name)
        return True

    # ------------------------------------------------------------ time

    def next_due(self) -> float | None:
        """The earliest due time (wall seconds); stale entries are dropped on the way."""
        heap = self._heap
        while heap and not self._current(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _current(self, entry: tuple[float, str, int]) -> bool:
        schedule = self._by_name.get(entry[1])
        return schedule is not None and schedule.version == entry[2] \
            and schedule.next_run_at == entry[0]

    def fire_due(self, now: float) -> int:
        """Fire every schedule due by `now`, once each: for its latest slot. How many fired."""
        fired = 0
        while True:
            due = self.next_due()
            if due is None or due > now:
                return fired
            _, name, _ = heapq.heappop(self._heap)
            fired += self._fire_or_skip(self._by_name[name], now)

    def _fire_or_skip(self, schedule: Schedule, now: float) -> int:
        """`_fire`; a schedule that cannot fire (a store error, or a row written before a rule
        that refuses it now) loses this slot, never the broker loop."""
        try:
            return self._fire(schedule, now)
        except Exception as exc:  # noqa: BLE001 - logged; the loop must go on
            log.error("schedule.fire_failed", schedule=schedule.name, error=repr(exc))
        try:
            schedule.next_run_at = schedule.slot_after(now)
        except Exception as exc:  # noqa: BLE001 - it has no next slot: it stays unfired
            log.error("schedule.stopped", schedule=schedule.name, error=repr(exc))
            return 0
        self._push(schedule)
        self._changed(schedule)
        return 0

    def _fire(self, schedule: Schedule, now: float) -> int:
        slot = schedule.latest_slot(now)
        spec = {**schedule.job, "idempotency_key": idempotency_key(schedule.name, slot)}
        job_id = self._submit(spec, schedule.name)
        schedule.last_run_at = slot
        schedule.next_run_at = schedule.slot_after(now)
        self._push(schedule)
        self._changed(schedule)
        if job_id is None:
            return 0
        self.events.emit(EventType.SCHEDULE_FIRED, {"name": schedule.name, "job_id": job_id,
                                                  "slot": slot})
        log.info("schedule.fired", schedule=schedule.name, job_id=job_id, slot=slot)
        return 1

    # ------------------------------------------------------------ commit

    @property
    def dirty(self) -> bool:
        return bool(self._upserts or self._deletes)

    def changes(self) -> tuple[list[tuple], list[str]]:
        """The rows to write and the names to delete, kept until `committed`."""
        return [s.row() for s in self._upserts.values()], sorted(self._deletes)

    def committed(self) -> None:
        self._upserts, self._deletes = {}, set()

