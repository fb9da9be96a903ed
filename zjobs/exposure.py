"""Protected by default, as Redis's protected mode is: an HTTP API bound to a non-loopback
address needs `ZJOBS_API_TOKEN`, or `--open` to serve it unprotected on purpose.

`zjobs api` and `zjobs up` check this before they start anything, so a
`--host 0.0.0.0` typed in a hurry never serves every job, log and artifact to
the network without a word.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from zjobs.broker.wire.errors import StartError
from zjobs.broker.wire.settings import API, default, resolved

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback only."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(opts: dict[str, Any]) -> None:
    """Raise StartError when the API would listen off loopback with no token and no --open."""
    values = resolved(API, opts)
    host = str(values.get("host") or default("host"))
    if is_loopback(host) or values.get("api_token") or values.get("open"):
        return
    raise StartError(f"refusing to serve the HTTP API on {host} without a token: set "
                     "ZJOBS_API_TOKEN (clients then send 'Authorization: Bearer <token>'), or "
                     "pass --open to serve it unprotected on purpose")
