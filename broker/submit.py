"""Turning a submitted job (plain msgpack data) into a `Job`, with cheap checks.

This runs in the broker loop for every submitted job, so it uses isinstance
checks, not pydantic; the client and the API validate fully at the edges.
Anything wrong raises ValueError or TypeError with a message naming the field.
"""

from __future__ import annotations

from typing import Any

from .jobs import KINDS, Job, JobState, new_job_id, parse_time
from .protocol import pack

_PAYLOAD_FIELDS = ("args", "kwargs", "spec", "function")


def _opt(spec: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = spec.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise TypeError(f"{name} must be {getattr(kind, '__name__', kind)}")
    return value


def build_job(spec: Any, wall: float) -> Job:
    if not isinstance(spec, dict):
        raise TypeError("a job must be a map")
    kind = _opt(spec, "kind", str, "task")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    task = spec.get("task")
    if kind == "task" and (not isinstance(task, str) or not task):
        raise ValueError("task must name a registered task")
    job_id = _opt(spec, "id", str, None) or new_job_id()
    if not 0 < len(job_id) <= 128:
        raise ValueError("id must be 1 to 128 characters")
    queue = _opt(spec, "queue", str, "default")
    if not queue:
        raise ValueError("queue must not be empty")
    run_at = parse_time(spec.get("run_at"))
    payload = _payload(spec, kind)
    status = JobState.SCHEDULED if run_at is not None and run_at > wall else JobState.QUEUED
    return Job(
        id=job_id, queue=queue, kind=kind, task=task if isinstance(task, str) else None,
        priority=_opt(spec, "priority", int, 0),
        timeout_s=_positive(_opt(spec, "timeout_s", (int, float), None), "timeout_s"),
        max_retries=max(_opt(spec, "max_retries", int, 0), 0),
        retry_backoff_s=float(_opt(spec, "retry_backoff_s", (int, float), 1.0)),
        run_at=run_at, idempotency_key=_opt(spec, "idempotency_key", str, None),
        status=status, attempts=0, created_at=wall, payload=payload, order=0,
    )


def _positive(value: float | None, name: str) -> float | None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def _payload(spec: dict[str, Any], kind: str) -> bytes:
    args = _opt(spec, "args", (list, tuple), [])
    kwargs = _opt(spec, "kwargs", dict, {})
    fields: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
    if kind == "exec":
        exec_spec = spec.get("spec")
        if not isinstance(exec_spec, dict) or not isinstance(exec_spec.get("entry"), str):
            raise ValueError("an exec job needs spec.entry")
        fields["spec"] = exec_spec
    if kind == "function":
        if not isinstance(spec.get("function"), bytes):
            raise ValueError("a function job needs function (cloudpickled bytes)")
        fields["function"] = spec["function"]
    return pack(fields)
