"""Ready queues (priority, then FIFO) and the delayed-job timeline. Pure data, no I/O."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Container, Iterator


class ReadyQueues:
    """Heaps of (-priority, order, job_id), one per (queue, requirement).

    A job's requirement is what it needs from a worker (its task name, or
    the exec/pickle permission), so a worker only looks at the heaps it can
    serve and a job no live worker can run simply stays in its heap. Entries
    are never removed in place: a cancelled job's entry stays until it
    reaches the top and `is_ready` says it no longer is. An emptied heap
    leaves its queue's map, so the keys there are the non-empty ones.
    """

    def __init__(self, is_ready: Callable[[str], bool]) -> None:
        self._heaps: dict[str, dict[str, list[tuple[int, int, str]]]] = {}
        self._is_ready = is_ready

    def push(self, queue: str, need: str, priority: int, order: int, job_id: str) -> None:
        by_need = self._heaps.get(queue)
        if by_need is None:
            by_need = self._heaps[queue] = {}
        heap = by_need.get(need)
        if heap is None:
            heap = by_need[need] = []
        heapq.heappush(heap, (-priority, order, job_id))

    def _top(self, by_need: dict[str, list[tuple[int, int, str]]], need: str
             ) -> tuple[int, int, str] | None:
        heap = by_need[need]
        while heap:
            entry = heap[0]
            if self._is_ready(entry[2]):
                return entry
            heapq.heappop(heap)
        del by_need[need]
        return None

    def pop_best(self, queues: tuple[str, ...],
                 pick: Callable[[Collection[str]], list[str]],
                 closed: Container[str] = ()) -> str | None:
        """The highest-priority, oldest job over `queues` but those in `closed`
        (paused, or out of tokens: one set lookup each), among the requirements `pick`
        chooses from each queue's non-empty ones, removed; None when there is none."""
        best: tuple[int, int, str] | None = None
        best_heap: list[tuple[int, int, str]] = []
        for queue in queues:
            by_need = self._heaps.get(queue)
            if not by_need or queue in closed:
                continue
            for need in pick(by_need.keys()):
                top = self._top(by_need, need)
                if top is not None and (best is None or top < best):
                    best, best_heap = top, by_need[need]
        if best is None:
            return None
        heapq.heappop(best_heap)
        return best[2]

    def any_work(self) -> bool:
        return any(self._heaps.values())

    def ready_ids(self, heaps: Callable[[str, str], bool]) -> Iterator[tuple[str, str]]:
        """(queue, job_id) of each ready entry in the heaps `heaps(queue, requirement)`
        selects; for views, not dispatch."""
        for queue, by_need in self._heaps.items():
            for need, heap in by_need.items():
                if heaps(queue, need):
                    yield from ((queue, e[2]) for e in heap if self._is_ready(e[2]))


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
