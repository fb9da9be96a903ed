"""The bounds of every field a job may carry, and of every request, defined once for all
the ways in.

The broker checks them in `broker.submit.build_job` (every SUBMIT, from any
client, passes there); the pydantic models of the client and the API
(`broker.models`, `api.schemas`) use the same constants, so the two layers
cannot disagree about what a valid job is. The bounds of a request (a page of
jobs, a held wait, what a worker's READY may claim) are here too: the broker,
the API (`api.schemas`, `GET /meta`) and the CLI (`zjobs list --limit`) read
them from here, so none of them accepts what another refuses or caps.

Why these numbers:

- `priority` is a signed 32-bit integer: far more levels than anyone uses,
  and it fits SQLite's INTEGER and msgpack with room to spare.
- `max_retries` up to 1000: the exponential backoff stays a finite float,
  and a job cannot retry without end.
- `retry_backoff_s` and `timeout_s` are finite seconds up to a week; a
  timeout must be above zero.
- `run_at` is finite epoch seconds from 1970 to the end of year 9999, the
  range an ISO-8601 string (and Python's datetime) can show.
- strings are capped so that one job cannot make an index or an event huge;
  every name, id and key also follows `broker.text`'s rule (no NUL, valid
  Unicode), so that both stores can hold it.
- a schedule fires at most once a second (`every_s` from 1 s: below that it
  is a busy loop, not a schedule) and at least once a year, so its next slot
  is a time the store and REST can show; longer periods are cron's.
- job data (`args`, `kwargs`, an exec `spec`) nests at most `MAX_NESTING`
  levels, and its integers fit msgpack's 64 bits.
- a sequence number or log line number (`Last-Event-ID`, `since`) fits
  SQLite's signed 64-bit INTEGER.
- a page of jobs (LIST, `GET /jobs`, `zjobs list`) holds 100 unless asked,
  at most 1000: one reply stays well under the message limit and one turn of
  the broker short; `next_cursor` goes on.
- a page of log lines (LOGS) or of replayed events (EVENTS) holds 10,000
  unless asked, at most 100,000 (the event window's default size).
- a request held until its jobs end (WAIT, a SUBMIT's `wait`, `GET
  /jobs/{id}/result?wait=`) is held at most an hour; the Python client waits
  in slices of 30 s anyway, and a longer wait is asked again.
- a worker's READY is believed within bounds whatever it claims: a capacity
  up to 100,000 jobs, a prefetch window up to 10,000 (`--prefetch`'s range),
  lists of up to 10,000 names.
"""

from __future__ import annotations

import math
from typing import Any

PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
MAX_RETRIES_MAX = 1000
RETRY_BACKOFF_MAX_S = 7 * 86400.0
TIMEOUT_MAX_S = 7 * 86400.0
RUN_AT_MIN = 0.0
RUN_AT_MAX = 253402300799.0  # 9999-12-31T23:59:59Z
ID_MAX_LEN = 128
DEPENDS_ON_MAX = 1000  # dependencies of one job
QUEUE_MAX_LEN = 200
TASK_MAX_LEN = 500
IDEMPOTENCY_KEY_MAX_LEN = 500
SCHEDULE_NAME_MAX_LEN = 200
CRON_MAX_LEN = 200
WORKER_NAME_MAX_LEN = 300  # a host name (up to 253) and a pid
ARTIFACT_NAME_MAX_LEN = 4096  # a path inside the job directory (PATH_MAX)
EVERY_MIN_S = 1.0
EVERY_MAX_S = 366 * 86400.0
MAX_NESTING = 64
INT_MIN = -(2**63)  # msgpack's integer range
INT_MAX = 2**64 - 1
SEQ_MAX = 2**63 - 1  # SQLite's INTEGER
LIST_DEFAULT = 100  # jobs of a page when none is asked for
LIST_MAX = 1000  # jobs of one page, at most
WAIT_MAX_S = 3600.0  # the longest one request is held for its jobs to end
STREAM_PAGE_DEFAULT = 10_000  # log lines of a LOGS page, events of an EVENTS page
STREAM_PAGE_MAX = 100_000
CAPACITY_MAX = 100_000  # jobs a worker may claim to run at once (READY)
PREFETCH_MAX = 10_000  # jobs a worker may hold beyond those it runs
READY_LIST_MAX = 10_000  # queues, tasks, flags or capabilities of one READY


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite_in(value: float, name: str, low: float, high: float) -> float:
    """`value` as a float if it is finite and within [low, high]; ValueError naming `name`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low:.12g} and {high:.12g}")
    return float(value)


def int_in(value: int, name: str, low: int, high: int) -> int:
    """`value` if it is within [low, high]; ValueError naming `name` if not."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low} and {high}")
    return value


def check_data(value: Any, name: str) -> None:
    """ValueError unless `value` nests at most MAX_NESTING levels and its ints fit msgpack.

    Iterative, so a hostile depth cannot exhaust the stack; it runs for every
    submitted job, so flat data (the common case) costs one pass.
    """
    if not isinstance(value, _CONTAINERS):
        return  # a scalar nests nothing; its type is the caller's to check
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ValueError(f"{name} nests deeper than {MAX_NESTING} levels")
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, _CONTAINERS):
                stack.append((child, depth + 1))
            elif isinstance(child, int) and not INT_MIN <= child <= INT_MAX:
                raise ValueError(f"an integer in {name} is outside the 64-bit range")


_CONTAINERS = (dict, list, tuple)
