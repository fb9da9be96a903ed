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
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTimeout, BodyTooLarge, error_response

CLOSE = {"Connection": "close"}


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
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0
        complete = False
        limit, timeout_s = self.max_body, self.timeout_s

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # past the body: only a disconnect can come, whenever it does
                return await receive()
            try:
                async with asyncio.timeout(timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return counted
