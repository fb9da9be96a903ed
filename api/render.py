"""Broker dicts as REST JSON, and the response class that writes them.

The conversions (ISO-8601 UTC times, bytes as base64 text, non-finite
floats as strings) are `broker.jsonview`'s, shared with the CLI's `--json`,
so that the shell and REST print the same thing.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from zjobs.broker.client.jsonview import (
    JOB_TIMES,
    RESULT_FIELDS,
    SCHEDULE_TIMES,
    WORKER_TIMES,
    dumps,
    job_json,
    jsonable,
    result_json,
    schedule_json,
    worker_json,
)

__all__ = ["JOB_TIMES", "RESULT_FIELDS", "SCHEDULE_TIMES", "WORKER_TIMES", "Json", "dumps",
           "job_json", "jsonable", "result_json", "schedule_json", "worker_json"]


class Json(JSONResponse):
    """A JSONResponse that also takes bytes (as base64) and NaN (as "nan")."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
