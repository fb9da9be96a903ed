"""Errors of the broker package.

ZJobsError
├── CommandError        a client command the broker refuses (has `code`)
├── BrokerError         the client's view of an ERR reply (has `code`)
│   └── AuthError       the broker refused this client's CURVE key (code `auth_refused`)
├── BrokerUnreachable   the broker did not answer in time (also a TimeoutError); `sent`
│                       says whether the request left: if not, nothing of it was kept
├── InvalidJob          the client refuses a job before sending it (also a ValueError)
├── JobFailed           `Client.result` of a job that failed (has `job`)
├── JobCancelled        `Client.result` of a job that was cancelled (has `job`)
├── FunctionError       an item of `Client.map` raised (has `index`, `remote_traceback`)
├── StartError          a process cannot start: a port in use, a store it cannot open
└── Fenced              this broker lost the lead: another broker's generation is current

ProtocolError (in broker.protocol) is a malformed frame; it never leaves the
broker loop. A broker that does not answer raises BrokerUnreachable, which is a
TimeoutError, so `except TimeoutError` still catches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Codes a command error may carry; the API maps them to HTTP statuses in one table.
BAD_REQUEST = "bad_request"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
TOO_LARGE = "too_large"
UNAVAILABLE = "unavailable"
BUSY = "busy"  # this connection has too many requests in flight: nothing was done
AUTH_REFUSED = "auth_refused"
TIMEOUT = "timeout"  # never sent by the broker: a request was sent and not answered in time


def job_error(type_: str, message: str) -> dict[str, Any]:
    """A job's `error` as the wire carries it ({type, message, traceback}), for an error
    that has no traceback: one the broker or the worker names, not one a task raised."""
    return {"type": type_, "message": message, "traceback": None}


class ZJobsError(Exception):
    """Base of every zjobs error."""


class CommandError(ZJobsError):
    """The broker refuses a command: `code` is one of the codes above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BrokerError(ZJobsError):
    """The broker answered ERR."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BrokerUnreachable(ZJobsError, TimeoutError):
    """No answer from the broker at `endpoint` within `timeout_s` seconds.

    `sent` is False when the request never left (no broker was connected): the broker
    certainly kept nothing of it, and it may simply be sent again. When it is True the
    request was sent and not answered: it may have been carried out (a job created, a
    queue purged), so only an idempotent request (a submit with an `idempotency_key`, a
    read) is safe to send again.
    """

    def __init__(self, endpoint: str, timeout_s: float, *, sent: bool = True) -> None:
        if sent:
            message = (f"broker at {endpoint} did not answer within {timeout_s:g} s; the "
                       "request was sent, so it may have been carried out")
        else:
            message = f"broker not reachable at {endpoint} within {timeout_s:g} s"
        super().__init__(message)
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.sent = sent


class InvalidJob(ZJobsError, ValueError):
    """A job the client refuses before sending it. One line that names the field
    (`priority: Input should be a valid integer (got 'high')`); `field` is the first bad
    field, `errors` every problem as pydantic reported it."""

    def __init__(self, message: str, field: str | None = None,
                 errors: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = list(errors or ())


class AuthError(BrokerError):
    """The broker refused the CURVE handshake: this key is not allowed on that socket."""

    def __init__(self, message: str) -> None:
        super().__init__(AUTH_REFUSED, message)


class JobFailed(ZJobsError):
    """The job ended `failed`; `job["error"]` holds type, message and traceback."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        super().__init__(f"job {job.get('id')} failed: {error.get('type')}: {error.get('message')}")
        self.job = job
        self.error = error


class JobCancelled(ZJobsError):
    """The job ended `cancelled`."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job.get('id')} was cancelled")
        self.job = job


class FunctionError(ZJobsError):
    """An item of `Client.map` raised: `index` is its position, `remote_traceback` the worker's."""

    def __init__(self, index: int, error: dict[str, Any]) -> None:
        self.index = index
        self.error = error
        self.remote_traceback = error.get("traceback") or ""
        super().__init__(f"item {index} raised {error.get('type')}: {error.get('message')}\n"
                         f"remote traceback:\n{self.remote_traceback}")


class StartError(ZJobsError):
    """A process cannot start; the message says why and what to do."""


class Fenced(ZJobsError):
    """This broker's leadership generation is no longer the current one: it must not write."""
