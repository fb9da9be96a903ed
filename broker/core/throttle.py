"""Queue controls: a queue may be paused, or limited to so many job starts per second.

`Throttle` holds each queue's settings and, for a rate-limited one, a token
bucket on the monotonic clock (burst = max(1, rate)): a start takes one
token, tokens come back at `rate` per second. Dispatch asks it one question,
`closed`: the set of queues that may start nothing now (paused, or out of
tokens), so a worker's pass skips them without looking at their jobs. A
queue that ran out of tokens leaves the set at its refill time, which
`next_refill_s` gives the broker loop as a deadline; nothing spins meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EPSILON = 1e-9  # a bucket this close to a token has it: float sums must not spin the loop


@dataclass(slots=True)
class QueueSettings:
    paused: bool = False
    rate_limit: float | None = None  # job starts per second; None: no limit
    tokens: float = 0.0
    refilled_at: float = 0.0  # monotonic time `tokens` was last brought up to date

    def burst(self) -> float:
        return max(1.0, self.rate_limit or 0.0)

    def to_wire(self, name: str) -> dict[str, Any]:
        return {"name": name, "paused": self.paused, "rate_limit": self.rate_limit}


def rate_or_none(rate: float | None) -> float | None:
    """The stored form of a rate limit: 0 and None both mean no limit."""
    if rate is None or rate == 0:
        return None
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate_limit must be a finite number >= 0, got {rate}")
    return float(rate)


class Throttle:
    """Per-queue pause and rate limit; a queue without settings is open and unlimited."""

    def __init__(self, stored: dict[str, tuple[bool, float | None]], mono: float) -> None:
        self.settings: dict[str, QueueSettings] = {}
        self.closed: set[str] = set()
        self._limited: dict[str, QueueSettings] = {}  # the rate-limited queues only
        for name, (paused, rate) in stored.items():
            self.configure(name, mono, paused=paused, rate_limit=rate or 0)

    def configure(self, name: str, mono: float, *, paused: bool | None = None,
                  rate_limit: float | None = None) -> QueueSettings:
        """Change what is given (`rate_limit` 0 removes the limit); a new limit starts full.
        ValueError, and nothing changed, for a rate that is negative or not finite."""
        rate = rate_or_none(rate_limit) if rate_limit is not None else None
        queue = self.settings.get(name)
        if queue is None:
            queue = self.settings[name] = QueueSettings()
        if paused is not None:
            queue.paused = paused
        if rate_limit is not None:
            queue.rate_limit = rate
            queue.tokens, queue.refilled_at = queue.burst(), mono
            if queue.rate_limit is None:
                self._limited.pop(name, None)
            else:
                self._limited[name] = queue
        self._update(name, queue)
        return queue

    def _update(self, name: str, queue: QueueSettings) -> None:
        if queue.paused or (queue.rate_limit is not None and queue.tokens < 1.0 - EPSILON):
            self.closed.add(name)
        else:
            self.closed.discard(name)

    def refill(self, mono: float) -> None:
        """Bring every bucket up to `mono`; a queue with a token again reopens. Costs one
        step per rate-limited queue, none per job."""
        for name, queue in self._limited.items():
            rate = queue.rate_limit or 0.0
            queue.tokens = min(queue.burst(), queue.tokens + (mono - queue.refilled_at) * rate)
            queue.refilled_at = mono
            self._update(name, queue)

    def started(self, name: str) -> None:
        """A job of `name` started: it takes a token if the queue is limited."""
        queue = self._limited.get(name)
        if queue is not None:
            queue.tokens -= 1.0
            self._update(name, queue)

    def next_refill_s(self, mono: float) -> float | None:
        """Seconds until the first queue closed only for want of a token has one again."""
        due = None
        for name in self.closed:
            queue = self._limited.get(name)
            if queue is None or queue.paused:
                continue
            rate = queue.rate_limit or 0.0
            wait = max((1.0 - queue.tokens) / rate - (mono - queue.refilled_at), 0.001)
            due = wait if due is None else min(due, wait)
        return due

    def view(self, name: str) -> dict[str, Any]:
        queue = self.settings.get(name)
        return (queue or QueueSettings()).to_wire(name)
