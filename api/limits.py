"""The request body's limits: its size, checked twice, and the time it may stall.

- A declared length over the limit is refused at once (413) without reading
  the body; a body that streams past the limit (chunked, or lying about its
  length) makes the app's next read raise BodyTooLarge, which the error
  handlers answer with 413.
- A body that stops arriving (shorter than its `Content-Length`, a client that
  went quiet) would hold its connection for ever: uvicorn has no read timeout.
  Each read of the body waits at most `timeout_s`; then the request is
  answered 408 (BodyTimeout). Once the body is complete, reads wait as long as
  they like: an SSE stream waits on one for its client's disconnect.

Both answers close the connection (`Connection: close`): the rest of that
body, if it ever comes, cannot be told from the next request.

After a request whose body passed `RELEASE_AFTER_BYTES`, the memory its
objects took is given back to the system (glibc's `malloc_trim`): freed, it
would otherwise stay with the process for good (see `api.batches`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zjobs.api.errors import BodyTimeout, BodyTooLarge, error_response

CLOSE = {"Connection": "close"}
RELEASE_AFTER_BYTES = 1024 * 1024


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0) and None


release_memory = _malloc_trim()


def declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: no request body larger than `max_body` bytes reaches the app, and no
    read of one waits more than `timeout_s` seconds."""

    def __init__(self, app: ASGIApp, max_body: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body:
            error = BodyTooLarge(self.max_body)
            await error_response(413, error.code, error.message, CLOSE)(scope, receive, send)
            return
        body = _Body(receive, self.max_body, self.timeout_s)
        try:
            await self.app(scope, body.receive, send)
        finally:
            if body.received >= RELEASE_AFTER_BYTES and release_memory is not None:
                release_memory()


class _Body:
    """The request's `receive`, counting and timing the body's bytes."""

    __slots__ = ("_receive", "limit", "timeout_s", "received", "complete")

    def __init__(self, receive: Receive, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self.limit = limit
        self.timeout_s = timeout_s
        self.received = 0
        self.complete = False

    async def receive(self) -> Message:
        if self.complete:  # past the body: only a disconnect can come, whenever it does
            return await self._receive()
        try:
            async with asyncio.timeout(self.timeout_s):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout(self.timeout_s) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message
