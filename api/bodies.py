"""Request bodies as JSON, read strictly, so that what cannot be a job is a 400, never a 500.

- the body must be UTF-8 (RFC 8259);
- `NaN`, `Infinity` and numbers too large for a float (`1e400`) are not JSON
  numbers: Python's parser would accept them as non-finite floats;
- nesting deep enough to exhaust the parser's stack is refused; job data is
  held to `broker.limits.MAX_NESTING` levels by the job model itself.

Malformed JSON raises `json.JSONDecodeError`, which the error handlers answer
with 400 too.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import ApiError


def parse_json(raw: bytes | str, what: str = "body") -> Any:
    """The JSON value of `raw`; ApiError(400) for anything standard JSON does not allow."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"{what}: not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(raw, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise ApiError(400, f"{what}: JSON nested too deeply") from None


def parse_object(raw: bytes) -> dict[str, Any]:
    """A body that must be a JSON object (`{}` when empty); ApiError(422) if it is not."""
    body = parse_json(raw or b"{}")
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object")
    return body


def _constant(name: str) -> Any:
    raise ApiError(400, f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"the number {text[:40]} is too large for a float")
    return value
