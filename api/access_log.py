"""The access log (`--access-log`): uvicorn's line per request, with `?token=` redacted.

A browser opens the dashboard and its streams with `?token=<token>` (see api/auth.py);
the access log must not hand that token to whoever reads the logs. The value of every
`token` query parameter becomes `REDACTED` before the line is formatted.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "REDACTED"
_PATH_ARG = 2  # uvicorn's access line: (client, method, path with query, http version, status)


def redact(path: str) -> str:
    """`path` with the value of each `token` query parameter replaced by `REDACTED`."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = []
    for pair in query.split("&"):
        key = pair.split("=", 1)[0]
        pairs.append(f"{key}={REDACTED}" if unquote_plus(key).lower() == "token" else pair)
    return f"{base}?{'&'.join(pairs)}"


class RedactTokens(logging.Filter):
    """A filter on uvicorn's access logger that redacts the path argument of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (isinstance(args, tuple) and len(args) > _PATH_ARG
                and isinstance(path := args[_PATH_ARG], str)):
            record.args = (*args[:_PATH_ARG], redact(path), *args[_PATH_ARG + 1:])
        return True


def redact_access_log() -> None:
    """Install the filter once in this process (every API process calls it)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
