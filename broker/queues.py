"""Ready queues (priority, then FIFO) and the delayed-job timeline. Pure data, no I/O."""

from __future__ import annotations

import heapq
from collections.abc import Callable


class ReadyQueues:
    """One heap per named queue of (-priority, order, job_id).

    Entries are never removed in place: a cancelled job's entry stays until
    it reaches the top and `is_ready` says it no longer is.
    """

    def __init__(self, is_ready: Callable[[str], bool]) -> None:
        self._heaps: dict[str, list[tuple[int, int, str]]] = {}
        self._is_ready = is_ready

    def push(self, queue: str, priority: int, order: int, job_id: str) -> None:
        heap = self._heaps.get(queue)
        if heap is None:
            heap = self._heaps[queue] = []
        heapq.heappush(heap, (-priority, order, job_id))

    def _top(self, queue: str) -> tuple[int, int, str] | None:
        heap = self._heaps.get(queue)
        while heap:
            entry = heap[0]
            if self._is_ready(entry[2]):
                return entry
            heapq.heappop(heap)
        return None

    def pop_best(self, queues: tuple[str, ...]) -> str | None:
        """The highest-priority, oldest job over `queues`, removed; None when all are empty."""
        best: tuple[int, int, str] | None = None
        best_queue = ""
        for queue in queues:
            top = self._top(queue)
            if top is not None and (best is None or top < best):
                best, best_queue = top, queue
        if best is None:
            return None
        heapq.heappop(self._heaps[best_queue])
        return best[2]

    def has_work(self, queues: tuple[str, ...]) -> bool:
        return any(self._heaps.get(q) for q in queues)

    def any_work(self) -> bool:
        return any(self._heaps.values())


class Timeline:
    """Jobs waiting for a wall-clock time (delayed jobs, retry backoff).

    A heap of (due, order, id).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []

    def add(self, due: float, order: int, job_id: str) -> None:
        heapq.heappush(self._heap, (due, order, job_id))

    def pop_due(self, now: float) -> list[str]:
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        return due

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
