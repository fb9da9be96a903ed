"""The broker's event log: sequence numbers, the replay window, the publish buffer."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from zjobs.broker.wire.protocol import encode_event_run, pack, packed_array, packed_map
from zjobs.broker.wire.settings import default


class EventLog:
    """Numbers every event (seq grows by exactly 1) and keeps the last `window` of them.

    Events emitted during a loop turn wait in `pending` until the turn's
    commit, so nothing is published that the store could still lose. They wait
    grouped, as they are emitted, in runs of consecutive events of one type, and
    each run is published as one message (docs/protocol.md 7.1). Grouping at
    emit costs one comparison per event, so a turn of single events (a few jobs
    in flight) costs no more to publish than one message per event did.
    """

    def __init__(self, last_seq: int = 0, window: int = default("event_window"),
                 wall: Callable[[], float] = time.time) -> None:
        self.wall = wall  # the engine's injected clock: tests see the times they set
        self.last_seq = last_seq
        self.window: deque[tuple[int, str, bytes]] = deque(maxlen=max(window, 1))
        self.pending: list[list[Any]] = []  # runs, each [type, packed body, packed body...]

    def emit(self, type_: str, fields: dict[str, Any]) -> None:
        self.last_seq += 1
        fields["seq"] = self.last_seq
        fields["ts"] = self.wall()
        fields["type"] = type_
        body = pack(fields)
        self.window.append((self.last_seq, type_, body))
        pending = self.pending
        if pending and pending[-1][0] == type_:
            pending[-1].append(body)
        else:
            pending.append([type_, body])

    def take_pending(self) -> list[tuple[bytes, bytes]]:
        """The pending events one by one, as (topic, packed body), and forget them."""
        runs, self.pending = self.pending, []
        return [(run[0].encode(), body) for run in runs for body in run[1:]]

    def take_messages(self, max_bytes: int) -> list[list[bytes]]:
        """The pending events as PUB messages, in seq order, and forget them: a run in one
        message, cut where its bodies would pass `max_bytes` (a larger event goes alone).
        Runs of one type, not the whole turn: a SUB filters on the first frame, the type."""
        runs, self.pending = self.pending, []
        messages: list[list[bytes]] = []
        for run in runs:
            topic = run[0].encode()
            if len(run) == 2:  # one event: [topic, body], the single form, in the run's own list
                run[0] = topic
                messages.append(run)
                continue
            bodies = run[1:]
            if sum(map(len, bodies)) > max_bytes:
                messages += [encode_event_run(topic, part) for part in _cut(bodies, max_bytes)]
            else:
                messages.append(encode_event_run(topic, bodies))
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


def _cut(bodies: list[bytes], max_bytes: int) -> list[list[bytes]]:
    """Consecutive parts of `bodies` of at most `max_bytes` each (a larger body alone)."""
    parts: list[list[bytes]] = []
    part: list[bytes] = []
    size = 0
    for body in bodies:
        if part and size + len(body) > max_bytes:
            parts.append(part)
            part, size = [], 0
        part.append(body)
        size += len(body)
    parts.append(part)
    return parts
