"""A client's connection to the broker as its socket monitor reports it.

A DEALER hides its connection: a broker that refuses our CURVE key and a
broker that is down both look like silence. libzmq (4.3 and later) reports
the handshake on a monitor socket, so the client can tell them apart and say
which it is; it also reports a connection that came back after it was lost,
which is when the client asks the restarted broker again what it was waiting
for. `Link` is the pure part: it reads monitor messages and keeps the state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import zmq

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


@dataclass(slots=True)
class Link:
    """What the monitor said last: refused (and why), lost, or up."""

    endpoint: str
    refused: str | None = None
    lost: bool = False

    def note(self, frames: list[bytes]) -> bool:
        """Take one monitor message; True when the connection is back after it was lost."""
        if len(frames) != 2 or len(frames[0]) != 6:
            return False
        event, _ = struct.unpack("=Hi", frames[0])
        if event in REFUSED:
            self.refused = (f"CURVE handshake refused by {self.endpoint}: {REFUSED[event]}")
            return False
        if event == zmq.EVENT_DISCONNECTED:
            self.lost = True
            return False
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.refused = None
            back, self.lost = self.lost, False
            return back
        return False
