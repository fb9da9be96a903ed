"""The job on the hot path: a slotted record, its states and their legal transitions."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zjobs.broker.wire.protocol import unpack
from zjobs.broker.wire.schema import (
    CHECKED,
    STATE_EVENTS,
    STATES,
    STORED,
    WIRE_COLUMNS,
    WIRE_PACKED,
    JobState,
)

TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
"""The states a job ends in: the one list of them (a finished job is in one of these)."""
TERMINAL_IN_ORDER = tuple(state for state in STATES if state in TERMINAL)  # to list them
TERMINAL_EVENTS = frozenset(STATE_EVENTS[state] for state in TERMINAL)  # what the engine publishes

TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.DEFERRED: frozenset({JobState.QUEUED, JobState.SCHEDULED, JobState.CANCELLED}),
    JobState.SCHEDULED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.SCHEDULED}),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

RETRYABLE = frozenset(state for state in TERMINAL if JobState.QUEUED in TRANSITIONS[state])
"""The ended states a job can run again from (RETRY, RETRY_MANY): the dead-letter set's."""
WAITING = frozenset(STATES) - TERMINAL - {JobState.RUNNING}
"""The states of a job that waits to start: what a queue's purge cancels."""

_DEFAULTS = tuple((f.name, f.default) for f in STORED)  # scalar defaults: nothing to copy
STORED_TYPES = {"TEXT": "str", "INTEGER": "int", "REAL": "float", "BLOB": "bytes | bytearray"}
"""The Python type a `Job` slot holds for each SQL type of the schema, as written. A packed
field is `bytes` as read from the store, `bytearray` as the broker makes it (a payload, a
result: it binds to SQLite faster, broker/stores/rows.py `blob`)."""


class IllegalTransition(Exception):
    """A state change the job lifecycle does not allow."""


class Job:
    """One job as the broker holds it while it is not finished.

    `payload` is the packed msgpack map of what only the worker needs
    (args, kwargs, spec, files, pickled function); the broker never unpacks
    it on the hot path.
    """

    __slots__ = tuple(f.name for f in STORED)  # broker.schema: every stored field

    # __init__(self, **fields): each stored field from `fields`, its default when absent or
    # None; written out from the schema below (a loop of setattr cost 3 µs a job)

    if TYPE_CHECKING:  # the slots as type checkers see them: as the store keeps each field
        # (STORED_TYPES; tests/broker/test_schema.py checks them against the schema)
        def __init__(self, **fields: Any) -> None: ...

        id: str
        queue: str
        kind: str
        task: str | None
        priority: int
        timeout_s: float | None
        max_retries: int
        retry_backoff_s: float
        run_at: float | None
        idempotency_key: str | None
        status: str
        attempts: int
        worker: str | None
        created_at: float
        started_at: float | None
        finished_at: float | None
        schedule: str | None
        payload: bytes | bytearray | None
        result: bytes | bytearray | None
        error: bytes | bytearray | None
        progress: bytes | bytearray | None
        depends_on: bytes | bytearray | None
        log_lines: int
        order: int
        lost_count: int

    def move(self, new: str) -> None:
        """Change state, refusing what the lifecycle forbids."""
        if new not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"job {self.id}: expected a state after {self.status}, got {new}")
        self.status = new

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def outcome(self) -> dict[str, Any]:
        """The job's outcome fields (`OUTCOME_FIELDS`): cheaper than `to_wire`, no payload."""
        return {"id": self.id, "status": self.status, "kind": self.kind,
                "result": unpack(self.result) if self.result is not None else None,
                "error": unpack(self.error) if self.error is not None else None}

    def to_wire(self) -> dict[str, Any]:
        """The job as clients see it (times are epoch seconds): the fields the schema shows."""
        data = {name: getattr(self, name) for name in WIRE_COLUMNS}
        data.update(payload_view(self.payload))
        for name in WIRE_PACKED:
            value = getattr(self, name)
            data[name] = unpack(value) if value is not None else None
        return data


OUTCOME_FIELDS = ("id", "status", "kind", "result", "error")
"""What a WAIT with `fields: "outcome"` shows of a job: enough for `result()`."""


def outcome_of(job: dict[str, Any]) -> dict[str, Any]:
    """The outcome fields of a job's client view."""
    return {name: job.get(name) for name in OUTCOME_FIELDS}


def _init_source() -> str:
    """`Job.__init__`, one assignment per stored field (as dataclasses generate theirs)."""
    lines = ["def __init__(self, **fields):", "    get = fields.get"]
    for index, (name, default) in enumerate(_DEFAULTS):
        if default is None:
            lines.append(f"    self.{name} = get({name!r})")
        else:
            lines.append(f"    value = get({name!r})")
            lines.append(f"    self.{name} = _DEFAULTS[{index}][1] if value is None else value")
    return "\n".join(lines)


FRESH_FIELDS = (*(f.name for f in CHECKED), "status", "created_at", "payload")
"""What a new job is built from (`fresh_job`: what a submit sets, checked, and what the broker
gives it); its other fields start at their defaults."""


def _fresh_source() -> str:
    """`fresh_job`: a new job from a map holding every FRESH_FIELDS name, each value as it is
    kept, the rest of its fields their (scalar) defaults; no keyword map, no `None` tests."""
    lines = ["def fresh_job(fields):", "    job = _new(Job)"]
    for index, (name, default) in enumerate(_DEFAULTS):
        if name in FRESH_FIELDS:
            value = f"fields[{name!r}]"
        elif default is None or type(default) in (int, float, str):
            value = repr(default)  # a literal: what the schema says, written once
        else:
            value = f"_DEFAULTS[{index}][1]"
        lines.append(f"    job.{name} = {value}")
    lines.append("    return job")
    return "\n".join(lines)


_namespace: dict[str, Any] = {"_DEFAULTS": _DEFAULTS, "Job": Job, "_new": object.__new__}
exec(_init_source(), _namespace)  # noqa: S102 - code built from the schema's own names
exec(_fresh_source(), _namespace)  # noqa: S102 - likewise
Job.__init__ = _namespace["__init__"]  # type: ignore[method-assign]
fresh_job: Callable[[dict[str, Any]], Job] = _namespace["fresh_job"]


def payload_view(payload: bytes | bytearray | None) -> dict[str, Any]:
    """args/kwargs/spec for display: file contents and pickles are summarised, not sent back."""
    body = unpack(payload) if payload else {}
    view: dict[str, Any] = {"args": body.get("args", []), "kwargs": body.get("kwargs", {})}
    spec = body.get("spec")
    if spec is not None:
        view["spec"] = {k: v for k, v in spec.items() if k not in ("code_files", "input_files")}
        for key in ("code_files", "input_files"):
            files = spec.get(key) or {}
            view["spec"][key] = {name: len(data) for name, data in files.items()}
    if body.get("function") is not None:
        view["args"] = []
    return view


# ---------------------------------------------------------------- ids and clocks

_last_ms = 0
_counter = 0
_random = random.Random(os.urandom(16))


def new_job_id() -> str:
    """A UUIDv7: 48-bit ms timestamp, then a counter within the ms, then random bits.

    The counter keeps ids generated in the same millisecond in order, so ids
    sort by submission time even within a batch.
    """
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms
        _counter += 1
        if _counter > 0xFFF:
            ms += 1
            _counter = 0
    else:
        _counter = 0
    _last_ms = ms
    rand = _random.getrandbits(62)  # no syscall per id: an id is unique, not a secret
    value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def dependencies(job: Job) -> list[str]:
    """The ids `job` waits for, unpacked from its stored `depends_on` (none if it has none)."""
    return unpack(job.depends_on) if job.depends_on else []
