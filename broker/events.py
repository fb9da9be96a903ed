"""The broker's event log: sequence numbers, the replay window, the publish buffer."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .protocol import encode_event_run, pack, packed_array, packed_map


class EventLog:
    """Numbers every event (seq grows by exactly 1) and keeps the last `window` of them.

    Events emitted during a loop turn wait in `pending` until the turn's
    commit, so nothing is published that the store could still lose.
    """

    def __init__(self, last_seq: int = 0, window: int = 100_000,
                 wall: Callable[[], float] = time.time) -> None:
        self.wall = wall  # the engine's injected clock: tests see the times they set
        self.last_seq = last_seq
        self.window: deque[tuple[int, str, bytes]] = deque(maxlen=max(window, 1))
        self.pending: list[tuple[bytes, bytes]] = []

    def emit(self, type_: str, fields: dict[str, Any]) -> None:
        self.last_seq += 1
        fields["seq"] = self.last_seq
        fields["ts"] = self.wall()
        fields["type"] = type_
        body = pack(fields)
        self.window.append((self.last_seq, type_, body))
        self.pending.append((type_.encode(), body))

    def take_pending(self) -> list[tuple[bytes, bytes]]:
        pending, self.pending = self.pending, []
        return pending

    def take_messages(self, max_bytes: int) -> list[list[bytes]]:
        """The pending events as PUB messages, in seq order: each run of consecutive events
        of one type in one message, of at most `max_bytes` of bodies (a larger event goes
        alone). Runs, not the whole turn: a SUB filters on the first frame, the type."""
        messages: list[list[bytes]] = []
        run: list[bytes] = []
        run_topic = b""
        size = 0
        for topic, body in self.take_pending():
            if run and (topic != run_topic or size + len(body) > max_bytes):
                messages.append(encode_event_run(run_topic, run))
                run, size = [], 0
            run_topic = topic
            run.append(body)
            size += len(body)
        if run:
            messages.append(encode_event_run(run_topic, run))
        return messages

    @property
    def first_seq(self) -> int:
        return self.window[0][0] if self.window else self.last_seq + 1

    def replay(self, since: int, types: tuple[str, ...] | None, limit: int) -> bytes:
        """A packed reply body: the events after `since` still held, oldest first.

        `truncated` says events after `since` were already dropped from the
        window; `more` says `limit` cut the answer short (ask again from `last`).
        """
        first = self.first_seq
        truncated = since + 1 < first
        start = max(since + 1 - first, 0)
        picked: list[bytes] = []
        last = since
        more = False
        for index in range(start, len(self.window)):
            seq, type_, body = self.window[index]
            if len(picked) >= limit:
                more = True
                break
            last = seq
            if types is None or type_.startswith(types):
                picked.append(body)
        fields = {"truncated": truncated, "more": more, "last": last, "last_seq": self.last_seq}
        return packed_map(fields, {"events": packed_array(picked)})
