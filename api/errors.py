"""Errors of the HTTP API and their JSON shape: `{"error": {"code", "message"}}`.

ApiError                an error answered with `status` and `code`
├── BodyTooLarge        the request body passed the size limit (413)
└── BodyTimeout         the request body stalled past its read timeout (408)

Errors from the layers below are translated here, at the boundary, by one
table each: `BROKER_STATUS` maps a `BrokerError.code` to an HTTP status;
malformed JSON is 400; a pydantic ValidationError is 422; anything else is
500 with no traceback. Bodies that are not strict JSON (bad UTF-8, NaN,
nesting that would exhaust the parser) are refused with 400 by `api.bodies`.

A broker that does not answer is told truthfully (`unanswered`): 503
`unavailable` only when the request was never sent, so nothing of it was
kept; 504 `timeout` when it was sent and not answered in time, so it may
have been carried out (a submit is then safe to retry with its
`Idempotency-Key`, see `api.jobs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from zjobs.broker.wire.errors import (
    BAD_REQUEST,
    BUSY,
    CONFLICT,
    NOT_FOUND,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
    BrokerError,
    BrokerUnreachable,
)

log = structlog.get_logger(__name__)

# A field problem the broker found is the client's to fix: 422, like pydantic's.
BROKER_STATUS: dict[str, int] = {
    BAD_REQUEST: 422,
    NOT_FOUND: 404,
    CONFLICT: 409,
    TOO_LARGE: 413,
    UNAVAILABLE: 503,
    BUSY: 503,
}

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal",
    503: UNAVAILABLE,
    504: TIMEOUT,
}

MAX_REPORTED_ERRORS = 5


class ApiError(Exception):
    """An error the API answers with `status`, `code` and `message`."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "error")
        self.message = message
        self.headers = headers


class BodyTooLarge(ApiError):
    """The request body is larger than the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the {limit} byte limit",
                         headers={"Connection": "close"})


class BodyTimeout(ApiError):
    """The request body stopped arriving: shorter than its Content-Length, or stalled."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"the request body stalled for {timeout_s:g} s (is it shorter "
                              "than its Content-Length?); the connection is closed",
                         headers={"Connection": "close"})


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def summarise(exc: ValidationError, within: str | None = None) -> str:
    """pydantic errors in one line: `jobs.1.task: Field required; priority: ...` (`within`
    is where the validated value sits, `jobs.1`)."""
    parts = []
    for error in exc.errors()[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(part) for part in (within or "", *error["loc"]) if part != "") \
            or "body"
        if not where.isprintable():  # a client's own key, e.g. with a newline: one line still
            where = repr(where)
        message = error["msg"].removeprefix("Value error, ")  # a validator's own words
        parts.append(f"{where}: {message}")
    more = exc.error_count() - MAX_REPORTED_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


# ---------------------------------------------------------------- handlers


def unanswered(exc: TimeoutError, headers: dict[str, str] | None = None) -> ApiError:
    """The broker did not answer: 503 if the request was never sent (nothing of it was kept,
    try again), else 504, the outcome unknown."""
    if isinstance(exc, BrokerUnreachable) and not exc.sent:
        return ApiError(503, "the broker is not reachable; the request was not sent (nothing "
                             "was done): try again", headers=headers)
    within = f" within {exc.timeout_s:g} s" if isinstance(exc, BrokerUnreachable) else ""
    return ApiError(504, f"the broker did not answer{within}; the request was sent and may "
                         "have been carried out: look before doing it again, or retry a "
                         "submit with the same Idempotency-Key", headers=headers)


async def on_api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def on_broker_error(request: Request, exc: BrokerError) -> Response:
    """One code per status for what the table knows: a broker `bad_request` is `invalid`, as
    pydantic's 422s are, so a client tells kinds of errors apart by one field."""
    status = BROKER_STATUS.get(exc.code, 500)
    code = HTTP_CODES[status] if exc.code in BROKER_STATUS else exc.code
    return error_response(status, code, exc.message)


async def on_timeout(request: Request, exc: TimeoutError) -> Response:
    return await on_api_error(request, unanswered(exc))


async def on_validation(request: Request, exc: ValidationError) -> Response:
    return error_response(422, "invalid", summarise(exc))


async def on_json(request: Request, exc: Exception) -> Response:
    return error_response(400, "bad_request", f"malformed JSON: {exc}")


async def on_http(request: Request, exc: HTTPException) -> Response:
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if exc.status_code != 404 else f"no route {request.url.path}"
    return error_response(exc.status_code, code, str(message), exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("api.unhandled", path=request.url.path, error=repr(exc))
    return error_response(500, "internal", "internal server error")


HANDLERS: dict[Any, Any] = {
    ApiError: on_api_error,
    BrokerError: on_broker_error,
    TimeoutError: on_timeout,
    ValidationError: on_validation,
    json.JSONDecodeError: on_json,
    HTTPException: on_http,
    Exception: on_unexpected,
}
