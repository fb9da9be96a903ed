"""HTTP requests too malformed to reach the app, answered in the API's JSON error format.

uvicorn answers a request its parser refuses (a garbled request line, a bad
header, an oversized head) itself, before any route or middleware, as
`text/plain` "Invalid HTTP request received.". `JsonErrorsH11Protocol` is
uvicorn's h11 protocol with that one answer changed to
`{"error": {"code": "bad_request", "message": ...}}`, so a client parses every
error of the API the same way. The API serves with it (`api.main`); uvicorn's
other parser (httptools) is not used.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from zjobs.api.errors import error_body


class JsonErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = json.dumps(error_body("bad_request", f"malformed HTTP request: {msg} Send "
                                                    "HTTP/1.1 with valid headers")).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode())]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
