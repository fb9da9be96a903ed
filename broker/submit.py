"""Turning a submitted job (plain msgpack data) into a `Job`, with cheap checks.

This runs in the broker loop for every submitted job, so it uses isinstance
and range checks, not pydantic; the client and the API validate fully at the
edges, with the same bounds (`broker.limits`). Every way in passes here, so
nothing out of bounds reaches the store. Anything wrong raises ValueError or
TypeError with a message naming the field.
"""

from __future__ import annotations

from typing import Any

from . import limits as lim
from .jobs import KINDS, Job, JobState, new_job_id, parse_time
from .protocol import pack


def _opt(spec: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = spec.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise TypeError(f"{name} must be {getattr(kind, '__name__', kind)}")
    return value


def _text(spec: dict[str, Any], name: str, default: str | None, max_len: int) -> str | None:
    value = _opt(spec, name, str, default)
    if value is not None and not 0 < len(value) <= max_len:
        raise ValueError(f"{name} must be 1 to {max_len} characters")
    return value


def _int(spec: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    return lim.int_in(_opt(spec, name, int, default), name, low, high)


def _seconds(spec: dict[str, Any], name: str, default: float | None, low: float,
             high: float) -> float | None:
    value = _opt(spec, name, (int, float), default)
    return None if value is None else lim.finite_in(value, name, low, high)


def _timeout(spec: dict[str, Any], name: str = "timeout_s") -> float | None:
    """A timeout is finite, above zero and at most `TIMEOUT_MAX_S`."""
    timeout_s = _seconds(spec, "timeout_s", None, 0.0, lim.TIMEOUT_MAX_S)
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"{name} must be positive")
    return timeout_s


def build_job(spec: Any, wall: float) -> Job:
    if not isinstance(spec, dict):
        raise TypeError("a job must be a map")
    kind = _opt(spec, "kind", str, "task")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    task = _text(spec, "task", None, lim.TASK_MAX_LEN)
    if kind == "task" and not task:
        raise ValueError("task must name a registered task")
    job_id = _text(spec, "id", None, lim.ID_MAX_LEN) or new_job_id()
    run_at = parse_time(spec.get("run_at"))
    payload = _payload(spec, kind)
    status = JobState.SCHEDULED if run_at is not None and run_at > wall else JobState.QUEUED
    return Job(
        id=job_id, queue=_text(spec, "queue", "default", lim.QUEUE_MAX_LEN), kind=kind,
        task=task, priority=_int(spec, "priority", 0, lim.PRIORITY_MIN, lim.PRIORITY_MAX),
        timeout_s=_timeout(spec),
        max_retries=_int(spec, "max_retries", 0, 0, lim.MAX_RETRIES_MAX),
        retry_backoff_s=_seconds(spec, "retry_backoff_s", 1.0, 0.0, lim.RETRY_BACKOFF_MAX_S),
        run_at=run_at, idempotency_key=_text(spec, "idempotency_key", None,
                                             lim.IDEMPOTENCY_KEY_MAX_LEN),
        status=status, attempts=0, created_at=wall, payload=payload, order=0,
    )


def _payload(spec: dict[str, Any], kind: str) -> bytes:
    args = _opt(spec, "args", (list, tuple), [])
    kwargs = _opt(spec, "kwargs", dict, {})
    fields: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
    if kind == "exec":
        exec_spec = spec.get("spec")
        if not isinstance(exec_spec, dict) or not isinstance(exec_spec.get("entry"), str):
            raise ValueError("an exec job needs spec.entry")
        _timeout(exec_spec, "spec.timeout_s")
        fields["spec"] = exec_spec
    if kind == "function":
        if not isinstance(spec.get("function"), bytes):
            raise ValueError("a function job needs function (cloudpickled bytes)")
        fields["function"] = spec["function"]
    for name, value in fields.items():
        lim.check_data(value, name)
    return pack(fields)
