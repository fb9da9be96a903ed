"""How an attempt's outcome is described on the wire.

An outcome is `(ok, result | {type, message, traceback}, retry_in_s)`.
"""

from __future__ import annotations

import traceback
from typing import Any

from zjobs.broker.wire.errors import job_error
from zjobs.worker.context import Retry

Outcome = tuple[bool, Any, float | None]


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


error = job_error  # an error the worker names (no traceback)


class FunctionCallError(Exception):
    """Call number `index` of a function job raised."""

    def __init__(self, index: int, exc: BaseException) -> None:
        super().__init__(f"item {index}: {type(exc).__name__}: {exc}")
        self.index = index


def failure(exc: BaseException) -> Outcome:
    """The outcome of an attempt that raised `exc`."""
    if isinstance(exc, Retry):
        return False, describe(exc), exc.delay_s
    if isinstance(exc, FunctionCallError):
        return False, {**describe(exc.__cause__ or exc), "index": exc.index}, None
    return False, describe(exc), None


def success(value: Any) -> Outcome:
    """The outcome of an attempt that returned `value` (packing its RESULT checks that it can
    travel as msgpack: `worker.peer.result_body`)."""
    return True, value, None
