"""The job on the hot path: a slotted record, its states and their legal transitions."""

from __future__ import annotations

import enum
import os
import time
from datetime import UTC, datetime
from typing import Any

from .limits import RUN_AT_MAX, RUN_AT_MIN, finite_in
from .protocol import unpack


class JobState(enum.StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
STATES = tuple(s.value for s in JobState)

TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.SCHEDULED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.SCHEDULED}),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

KINDS = frozenset({"task", "exec", "function"})


class IllegalTransition(Exception):
    """A state change the job lifecycle does not allow."""


class Job:
    """One job as the broker holds it while it is not finished.

    `payload` is the packed msgpack map of what only the worker needs
    (args, kwargs, spec, files, pickled function); the broker never unpacks
    it on the hot path.
    """

    __slots__ = (
        "id", "queue", "kind", "task", "priority", "timeout_s", "max_retries",
        "retry_backoff_s", "run_at", "idempotency_key", "status", "attempts", "worker",
        "created_at", "started_at", "finished_at", "payload", "result", "error",
        "progress", "log_lines", "order", "lost_count",
    )

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))
        if self.attempts is None:
            self.attempts = 0
        if self.log_lines is None:
            self.log_lines = 0
        if self.lost_count is None:
            self.lost_count = 0

    def move(self, new: str) -> None:
        """Change state, refusing what the lifecycle forbids."""
        if new not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"job {self.id}: expected a state after {self.status}, got {new}")
        self.status = new

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_wire(self) -> dict[str, Any]:
        """The job as clients see it (times are epoch seconds)."""
        data = {name: getattr(self, name) for name in _PUBLIC}
        data.update(payload_view(self.payload))
        data["result"] = unpack(self.result) if self.result is not None else None
        data["error"] = unpack(self.error) if self.error is not None else None
        data["progress"] = unpack(self.progress) if self.progress is not None else None
        return data


_PUBLIC = (
    "id", "queue", "kind", "task", "priority", "timeout_s", "max_retries", "retry_backoff_s",
    "run_at", "idempotency_key", "status", "attempts", "worker", "created_at", "started_at",
    "finished_at",
)


def payload_view(payload: bytes | None) -> dict[str, Any]:
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
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(ts: float | None) -> str | None:
    """Epoch seconds to an ISO-8601 UTC string (REST)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> float | None:
    """Epoch seconds or an ISO-8601 string to epoch seconds; ValueError otherwise.

    The time must be finite and within `RUN_AT_MIN`..`RUN_AT_MAX`, so that it
    can be stored and shown as an ISO-8601 string.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("run_at must be epoch seconds or an ISO-8601 string")
    if isinstance(value, int | float):
        seconds: float = value
    elif isinstance(value, str):
        seconds = _iso_seconds(value)
    else:
        raise ValueError("run_at must be epoch seconds or an ISO-8601 string")
    return finite_in(seconds, "run_at", RUN_AT_MIN, RUN_AT_MAX)


def _iso_seconds(value: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"run_at is not an ISO-8601 time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise ValueError(f"run_at is out of range: {value[:40]!r}") from None
