"""Request bodies as JSON, read strictly, so that what cannot be a job is a 4xx, never a 500.

- a body must say it is JSON: `Content-Type: application/json` (or a `+json`
  type), else 415; a `text/plain` or form body is not read as JSON;
- the body must be UTF-8 (RFC 8259), and its strings valid Unicode: JSON can
  spell a lone surrogate (`"\\udc80"`), which no UTF-8 text, msgpack string
  or store can hold;
- `NaN`, `Infinity` and numbers too large for a float (`1e400`) are not JSON
  numbers: Python's parser would accept them as non-finite floats;
- an integer has at most `MAX_INT_DIGITS` digits: job data holds 64-bit
  integers (20 digits) and Python refuses to read more than 4,300 digits
  with an error of its own;
- nesting deep enough to exhaust the parser's stack is refused; job data is
  held to `broker.limits.MAX_NESTING` levels by the job model itself.

Each of these is a 400 (415 for the type); malformed JSON raises
`json.JSONDecodeError`, which the error handlers answer with 400 too.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request

from zjobs.api.errors import ApiError
from zjobs.broker.wire.text import has_lone_surrogate

MAX_INT_DIGITS = 40
# A JSON escape of a surrogate, which is only valid Unicode as the first half of a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


async def json_body(request: Request, what: str = "body") -> Any:
    """The request's JSON value, None for an empty body; 415 unless it is sent as JSON."""
    raw = await request.body()
    if not raw:
        return None
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
            media_type.startswith("application/") and media_type.endswith("+json")):
        raise ApiError(415, f"{what}: send JSON with Content-Type: application/json "
                            f"(got {media_type or 'no Content-Type'})")
    return parse_json(raw, what)


async def json_object(request: Request) -> dict[str, Any]:
    """A body that must be a JSON object (`{}` when empty); ApiError(422) if it is not."""
    body = await json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object")
    return body


def parse_json(raw: bytes | str, what: str = "body") -> Any:
    """The JSON value of `raw`; ApiError(400) for anything standard JSON does not allow."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"{what}: not valid UTF-8 (byte {exc.start})") from None
    else:
        text, raw = raw, raw.encode("utf-8", "surrogatepass")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ApiError(400, f"{what}: JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(raw) and _holds_lone_surrogate(value):
        raise ApiError(400, f"{what}: a string holds a lone surrogate (such as \\udc80), "
                            "which is not valid Unicode")
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    """Whether a string (or a key) anywhere in `value` holds a lone surrogate; iterative."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _constant(name: str) -> Any:
    raise ApiError(400, f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"the number {text[:40]} is too large for a float")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ApiError(400, f"the integer {text[:20]}... has {len(text.lstrip('-'))} digits; "
                            f"numbers here have at most {MAX_INT_DIGITS}")
    return int(text)
