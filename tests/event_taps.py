"""Raw SUB sockets on a broker's events, and the replay to check what they got against."""

from __future__ import annotations

from typing import Any

import zmq

from zjobs import Client
from zjobs.broker.wire import protocol as p


class Tap:
    """A raw SUB socket on the broker's events: what arrived, message by message."""

    def __init__(self, endpoint: str, prefix: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.rcvhwm = 0  # keep everything: the test reads after the fact
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sock.connect(endpoint)
        self.messages: list[list[bytes]] = []

    def read(self) -> int:
        while self.sock.poll(0):
            self.messages.append(self.sock.recv_multipart())
        return len(self.messages)

    def close(self) -> None:
        self.sock.close(linger=0)

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        return [e for frames in self.messages for e in p.decode_events(frames) if e["seq"] > seq]


def replayed(client: Client, since: int, until: int) -> list[dict[str, Any]]:
    """The broker's window from `since` to `until`: the truth live events must match."""
    events: list[dict[str, Any]] = []
    for page in client.replay_pages(since):
        events += [e for e in page["events"] if e["seq"] <= until]
    return events
