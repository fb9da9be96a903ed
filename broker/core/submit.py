"""Turning a submitted job (plain msgpack data) into a `Job`, with cheap checks.

This runs in the broker loop for every submitted job, so it uses isinstance
and range checks, not pydantic: each field's `check` from the job schema
(`broker.schema`), whose bounds the client's and the API's pydantic models
share. Every way in passes here, so nothing out of bounds reaches the store.
Anything wrong raises ValueError or TypeError with a message naming the field.
"""

from __future__ import annotations

from typing import Any

from zjobs.broker.stores.rows import blob
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import Job, JobState, fresh_job, new_job_id
from zjobs.broker.wire.protocol import pack
from zjobs.broker.wire.schema import BY_NAME, CHECKED, plain_members

_ARGS, _KWARGS, _TIMEOUT = BY_NAME["args"], BY_NAME["kwargs"], BY_NAME["timeout_s"]


_S = plain_members(JobState)
_CHECKS = {f.name: f.check for f in CHECKED}
_DEFAULTS = {f.name: f.fresh_default() for f in CHECKED}  # scalars: nothing to copy


def build_job(spec: Any, wall: float) -> Job:
    if not isinstance(spec, dict):
        raise TypeError("a job must be a map")
    fields = dict(_DEFAULTS)
    for name, value in spec.items():  # only what the job sets: the rest is its default
        check = _CHECKS.get(name)
        if check is not None and value is not None:
            fields[name] = check(value)
    if fields["kind"] == "task" and not fields["task"]:
        raise ValueError("task must name a registered task")
    fields["id"] = fields["id"] or new_job_id()
    payload = _payload(spec, fields["kind"])
    if fields["timeout_s"] is None and fields["kind"] == "exec":
        fields["timeout_s"] = exec_backstop(spec["spec"].get("timeout_s"))
    run_at = fields["run_at"]
    status = _S.SCHEDULED if run_at is not None and run_at > wall else _S.QUEUED
    if fields["depends_on"] is not None:
        status = _S.DEFERRED  # until the engine has looked at its dependencies
    fields["status"] = status
    fields["created_at"] = wall
    fields["payload"] = payload
    return fresh_job(fields)


EXEC_BACKSTOP_S = 5.0


def exec_backstop(program_timeout_s: float | None) -> float | None:
    """The attempt limit of an `exec` job that sets none: a little after its program's own.

    The runner stops the program at `spec.timeout_s` itself (keeping the artifacts written
    so far); the attempt's limit only backs that up. Decided here, at the broker's edge,
    so an exec job gets it however it was submitted (Python client, REST, CLI).
    """
    return None if program_timeout_s is None else program_timeout_s + EXEC_BACKSTOP_S


def _payload(spec: dict[str, Any], kind: str) -> bytearray:
    fields: dict[str, Any] = {"args": list(_ARGS.check(spec.get("args"))),
                              "kwargs": _KWARGS.check(spec.get("kwargs"))}
    if kind == "exec":
        fields["spec"] = _exec_spec(spec.get("spec"))
    if kind == "function":
        if not isinstance(spec.get("function"), bytes):
            raise ValueError("a function job needs function (cloudpickled bytes)")
        fields["function"] = spec["function"]
    for name, value in fields.items():
        lim.check_data(value, name)
    return blob(pack(fields))


def _exec_spec(exec_spec: Any) -> dict[str, Any]:
    if not isinstance(exec_spec, dict) or not isinstance(exec_spec.get("entry"), str):
        raise ValueError("an exec job needs spec.entry")
    try:
        _TIMEOUT.check(exec_spec.get("timeout_s"))  # the program's own limit: the same bounds
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"spec.{exc}") from None
    return exec_spec
