"""Bearer-token auth for every route but the public ones.

With a token configured (`ZJOBS_API_TOKEN`), a request needs
`Authorization: Bearer <token>`; a GET (SSE streams, downloads, pages a
browser opens directly) may give it as `?token=<token>` instead, because
`EventSource` cannot set headers. Tokens are compared in constant time.

Public, decided here: `/health` (load balancers and `zjobs up` probe it),
and the static shells that hold no data — the dashboard page `/`, its
`/static/*` assets and the `/docs` page. Those pages pass their own
`?token=` on to the API calls they make, which are all checked. Without a
token configured the API is open (it binds to loopback by default).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from zjobs.api.errors import error_response

PUBLIC_PATHS = frozenset({"/health", "/", "/docs"})
PUBLIC_PREFIXES = ("/static/",)
QUERY_TOKEN_METHODS = frozenset({"GET", "HEAD"})


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def presented_token(scope: Scope) -> str | None:
    """The token the request carries: the bearer header, else `?token=` on a GET."""
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    if scope.get("method") in QUERY_TOKEN_METHODS:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("token")
        return values[-1] if values else None
    return None


class TokenAuth:
    """ASGI middleware: 401 unless the request carries the token (or the path is public)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = presented_token(scope)
        if given is not None and hmac.compare_digest(given.encode(), self.token):
            await self.app(scope, receive, send)
            return
        message = "missing bearer token" if given is None else "wrong token"
        response = error_response(401, "unauthorized", message,
                                  headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
