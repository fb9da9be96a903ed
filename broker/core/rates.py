"""Counts per wall-clock second over a bounded window (throughput without per-event storage)."""

from __future__ import annotations

from collections import deque


class RateCounter:
    def __init__(self, keep_s: int = 600) -> None:
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first
        self._keep_s = keep_s

    def add(self, ts: float, n: int = 1) -> None:
        second = int(ts)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += n
            return
        buckets.append([second, n])
        while buckets[0][0] < second - self._keep_s:
            buckets.popleft()

    def total(self, now: float, window_s: int) -> int:
        cutoff = int(now) - window_s
        return sum(n for second, n in self._buckets if second > cutoff)

    def series(self, end: int, window_s: int) -> list[int]:
        """The count of each second in `[end - window_s, end)`, oldest first (0 where none)."""
        start = end - window_s
        out = [0] * window_s
        for second, n in self._buckets:
            if start <= second < end:
                out[second - start] = n
        return out
