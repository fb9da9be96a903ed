"""A client's connection to the broker as its socket monitor reports it.

A DEALER hides its connection: a broker that refuses our CURVE key and a
broker that is down both look like silence. libzmq (4.3 and later) reports
the handshake on a monitor socket, so the client can tell them apart and say
which it is; it also reports a connection that came back after it was lost,
which is when the client asks the restarted broker again what it was waiting
for. `Link` is the pure part: it reads monitor messages and keeps the state;
`Outstanding` is the table of requests in flight that both clients keep, and
what of it to send again then.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import zmq

from zjobs.broker.wire import protocol as p

REFUSED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "this key is not allowed on the frontend",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "the handshake failed (is the broker's public key "
                                          "the right one?)",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "the security mechanisms differ (CURVE on one side "
                                         "only?)",
}
WATCHED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_SUCCEEDED
           | zmq.EVENT_DISCONNECTED)
MISMATCH_AFTER = 3  # a plain client's failed connections in a row taken as CURVE-only broker
# Requests that ask and change nothing: sent again to a broker that came back.
RESENDABLE = frozenset({p.WAIT, p.GET, p.LIST, p.LOGS, p.EVENTS, p.STATS, p.PING, p.WORKERS,
                        p.ARTIFACT})


@dataclass(slots=True)
class Link:
    """What the monitor said last: refused (and why), lost, or up."""

    endpoint: str
    refused: str | None = None
    lost: bool = False
    curve: bool = True  # without CURVE, one failed handshake is no refusal: see `note`
    failures: int = 0  # connections that ended before their handshake succeeded, in a row

    def note(self, frames: list[bytes]) -> bool:
        """Take one monitor message; True when the connection is back after it was lost.

        A CURVE client is refused at the first failed handshake. A plain client is refused
        when the broker says the mechanisms differ, or when its connections end before the
        handshake MISMATCH_AFTER times in a row: whether libzmq reports the mismatch or only
        a closed connection depends on which side reads first, and a broker that merely
        stopped or lost the lead refuses the next connection instead of accepting it."""
        if len(frames) != 2 or len(frames[0]) != 6:
            return False
        event, _ = struct.unpack("=Hi", frames[0])
        if event in REFUSED and (self.curve or event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self.refused = (f"CURVE handshake refused by {self.endpoint}: {REFUSED[event]}")
            return False
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.refused, self.failures = None, 0
            back, self.lost = self.lost, False
            return back
        if event == zmq.EVENT_DISCONNECTED:
            self.lost = True
        if not self.curve:  # a disconnect or a failed handshake without detail
            self.failures += 1
            if self.failures >= MISMATCH_AFTER:
                self.refused = (f"CURVE handshake refused by {self.endpoint}: "
                                f"{REFUSED[zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL]}")
        return False


@dataclass(slots=True)
class Pending:
    """A read in flight, to send again after a reconnect."""

    command: bytes
    body: Any
    sent_mono: float

    def again(self, rid: bytes, now: float) -> list[bytes]:
        """The request's frames for a broker that came back; a WAIT waits what is left."""
        body = self.body
        if self.command == p.WAIT and isinstance(body.get("timeout"), int | float):
            body = {**body, "timeout": max(body["timeout"] - (now - self.sent_mono), 0.0)}
        return p.encode_request(self.command, rid, body)


class Outstanding:
    """The requests sent and not answered yet, by request id (8 bytes, counting up)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._sent: dict[bytes, Pending | None] = {}  # None: not to be sent twice

    def __len__(self) -> int:
        return len(self._sent)

    def __contains__(self, rid: object) -> bool:
        return rid in self._sent

    def next_id(self) -> bytes:
        return next(self._ids).to_bytes(8, "big")

    def sent(self, rid: bytes, command: bytes, body: Any, now: float) -> None:
        self._sent[rid] = Pending(command, body, now) if command in RESENDABLE else None

    def answered(self, rid: bytes) -> None:
        self._sent.pop(rid, None)

    def again(self, now: float, skip: Container[bytes] = ()) -> list[list[bytes]]:
        """The frames of every read still waiting (but those in `skip`), for a broker back."""
        return [pending.again(rid, now) for rid, pending in self._sent.items()
                if pending is not None and rid not in skip]
