"""Broker dicts as JSON for people and programs: what REST returns and what the CLI's
`--json` prints, defined once so the two cannot differ.

Times are epoch seconds on the wire and in the Python client, ISO-8601 UTC
strings here (the job model). Bytes (a `function` job's pickled result)
become base64 strings; the non-finite floats JSON cannot hold become the
strings "nan", "inf", "-inf". SSE event bodies keep the broker's epoch `ts`,
so that they match the bus.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from zjobs.broker.wire.schema import TIMES
from zjobs.broker.wire.times import iso

JOB_TIMES = TIMES  # the job fields that are times, from the job schema
WORKER_TIMES = ("joined_at",)
SCHEDULE_TIMES = ("next_run_at", "last_run_at", "created_at")
RESULT_FIELDS = ("id", "status", "result", "error")


def _b64(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def jsonable(value: Any) -> Any:
    """`value` with bytes as base64 text and non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _b64(value)
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON, compact unless `indent`; the fast path leaves the walk over `value` to the
    encoder."""
    separators = (",", ":") if indent is None else None
    try:
        return json.dumps(value, default=_b64, allow_nan=False, ensure_ascii=False,
                          separators=separators, indent=indent)
    except ValueError:  # a NaN or an infinity somewhere: the slow path
        return json.dumps(jsonable(value), ensure_ascii=False, separators=separators,
                          indent=indent)


def _with_iso(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = dict(data)
    for name in fields:
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = iso(value)
    return out


def job_json(job: dict[str, Any]) -> dict[str, Any]:
    return _with_iso(job, JOB_TIMES)


def worker_json(worker: dict[str, Any]) -> dict[str, Any]:
    return _with_iso(worker, WORKER_TIMES)


def schedule_json(schedule: dict[str, Any]) -> dict[str, Any]:
    return _with_iso(schedule, SCHEDULE_TIMES)


def result_json(job: dict[str, Any]) -> dict[str, Any]:
    return {name: job.get(name) for name in RESULT_FIELDS}
