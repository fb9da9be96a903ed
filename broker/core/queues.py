"""Ready queues (priority, then FIFO) and the delayed-job timeline: their windows in memory.
Pure data, no I/O.

Each holds a window: the next jobs in its order, not necessarily all of them. Its `edge` is
the key of the last job it holds of those the store has: a job past the edge is not taken
(`push` and `add` return False), it waits in the store, and the engine reads it in, a page at
a time, as the window drains (`load`). No edge: the window holds every such job. A window
never holds a job past one the store still has, so what it gives out is what the whole queue
would, in the same order. See docs/architecture.md, "Deep queues".
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Container, Iterator

Key = tuple[int, int]  # a ready job's (-priority, order): the smaller runs first
FIRST: Key = (-(2**32), 0)  # an edge before every job: none of the window read in yet
Due = tuple[float, int]  # a waiting job's (due, order)


class ReadyQueues:
    """Heaps of (-priority, order, job_id), one per (queue, requirement), each a window.

    A job's requirement is what it needs from a worker (its task name, or
    the exec/pickle permission), so a worker only looks at the heaps it can
    serve and a job no live worker can run simply stays in its heap. Entries
    are never removed in place: a cancelled job's entry stays until it
    reaches the top and `is_ready` says it no longer is. An emptied heap
    leaves its queue's map, unless its window has an edge: the store holds
    more of its jobs, and until they are read in, no worse job of a worker's
    queues is given out (`pop_best`).
    """

    def __init__(self, is_ready: Callable[[str], bool]) -> None:
        self._heaps: dict[str, dict[str, list[tuple[int, int, str]]]] = {}
        self._edges: dict[tuple[str, str], Key] = {}
        self._is_ready = is_ready

    def push(self, queue: str, need: str, priority: int, order: int, job_id: str) -> bool:
        """Add a ready job to its window; False (and nothing added) if it is past the edge."""
        if self._edges:
            edge = self._edges.get((queue, need))
            if edge is not None and (-priority, order) > edge:
                return False
        heapq.heappush(self._heap(queue, need), (-priority, order, job_id))
        return True

    def _heap(self, queue: str, need: str) -> list[tuple[int, int, str]]:
        """The heap of `queue` and `need`, made empty if there is none."""
        by_need = self._heaps.get(queue)
        if by_need is None:
            by_need = self._heaps[queue] = {}
        heap = by_need.get(need)
        if heap is None:
            heap = by_need[need] = []
        return heap

    def _top(self, queue: str, by_need: dict[str, list[tuple[int, int, str]]], need: str
             ) -> tuple[int, int, str] | None:
        heap = by_need[need]
        while heap:
            entry = heap[0]
            if self._is_ready(entry[2]):
                return entry
            heapq.heappop(heap)
        if (queue, need) not in self._edges:
            del by_need[need]
        return None

    def pop_best(self, queues: tuple[str, ...],
                 pick: Callable[[Collection[str]], list[str]],
                 closed: Container[str] = ()) -> str | None:
        """The highest-priority, oldest job over `queues` but those in `closed`
        (paused, or out of tokens: one set lookup each), among the requirements `pick`
        chooses from each queue's non-empty ones, removed; None when there is none, or when
        a window with more jobs in the store has run dry and the best one held is worse
        than its edge (the next of those may be better: `load` them first)."""
        best: tuple[int, int, str] | None = None
        best_heap: list[tuple[int, int, str]] = []
        bound: Key | None = None
        for queue in queues:
            by_need = self._heaps.get(queue)
            if not by_need or queue in closed:
                continue
            for need in pick(by_need.keys()):
                top = self._top(queue, by_need, need)
                if top is None:
                    edge = self._edges.get((queue, need))
                    if edge is not None and (bound is None or edge < bound):
                        bound = edge
                elif best is None or top < best:
                    best, best_heap = top, by_need[need]
        if best is None or (bound is not None and best[:2] > bound):
            return None
        heapq.heappop(best_heap)
        return best[2]

    def any_work(self) -> bool:
        return any(self._heaps.values())

    # ------------------------------------------------------------ the windows

    def load(self, queue: str, need: str, entries: list[Key], ids: list[str],
             edge: Key | None) -> None:
        """Jobs read in from the store (their keys and ids, in order), and the window's new
        edge: the key of the last one if the store may hold more, else None."""
        heap = self._heap(queue, need)
        for (neg_priority, order), job_id in zip(entries, ids, strict=True):
            heapq.heappush(heap, (neg_priority, order, job_id))
        if edge is None:
            self._edges.pop((queue, need), None)
            if not heap:
                del self._heaps[queue][need]
        else:
            self._edges[(queue, need)] = edge

    def trim(self, queue: str, need: str, limit: int) -> list[str]:
        """Keep the best `limit` (at least 1) ready jobs of the window, set its edge at the
        last of them; the ids of the others, which leave it (the store has them)."""
        heap = self._heaps.get(queue, {}).get(need)
        if heap is None:
            return []
        seen: set[str] = set()
        live = []
        for entry in sorted(heap):
            if entry[2] not in seen and self._is_ready(entry[2]):
                seen.add(entry[2])
                live.append(entry)
        kept, dropped = live[:limit], live[limit:]
        heap[:] = kept  # sorted: a heap already
        if dropped:
            self._edges[(queue, need)] = kept[-1][:2]
        return [entry[2] for entry in dropped]

    def sizes(self) -> Iterator[tuple[str, str, int]]:
        """(queue, requirement, entries) of each window held (stale entries counted)."""
        for queue, by_need in self._heaps.items():
            for need, heap in by_need.items():
                yield queue, need, len(heap)

    def edges(self) -> dict[tuple[str, str], Key]:
        """The windows with more jobs in the store: their edges (a copy)."""
        return dict(self._edges)

    def has_backlog(self) -> bool:
        """Whether some window has more jobs in the store."""
        return bool(self._edges)

    def size(self, queue: str, need: str) -> int:
        return len(self._heaps.get(queue, {}).get(need, ()))

    def forget(self, queue: str, need: str) -> None:
        """Drop a window's edge (the store has no more of its jobs to give)."""
        self._edges.pop((queue, need), None)


class Timeline:
    """Jobs waiting for a wall-clock time (delayed jobs, retry backoff): a window of them.

    A heap of (due, order, id). Its `edge` is the (due, order) of the last job it holds of
    those the store has; a job past it waits in the store (`add` returns False) until the
    engine reads it in. A pinned entry (a restarted broker's hold on the jobs that were
    running, which the store does not know as waiting) is always taken.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self.edge: Due | None = None

    def add(self, due: float, order: int, job_id: str, *, pinned: bool = False) -> bool:
        edge = self.edge
        if edge is not None and not pinned and (due, order) > edge:
            return False
        heapq.heappush(self._heap, (due, order, job_id))
        return True

    def load(self, entries: list[tuple[float, int, str]], edge: Due | None) -> None:
        """Jobs read in from the store, and the new edge (None: the store has no more)."""
        for entry in entries:
            heapq.heappush(self._heap, entry)
        self.edge = edge

    def trim(self, limit: int, stored: Callable[[str, float], bool | None]) -> list[str]:
        """Keep the first `limit` of the jobs the store has as waiting, and every other
        entry; the ids of those past them, which leave (the store has them). `stored(id,
        due)`: True if the store has the job waiting for `due`, False if only this timeline
        does (pinned), None if the entry is stale."""
        kept: list[tuple[float, int, str]] = []
        dropped: list[str] = []
        seen: set[str] = set()
        held = 0
        for entry in sorted(self._heap):
            verdict = stored(entry[2], entry[0])
            if verdict is None or entry[2] in seen:
                continue
            seen.add(entry[2])
            if verdict and held >= limit:
                if not dropped:
                    self.edge = kept[-1][:2]
                dropped.append(entry[2])
                continue
            held += bool(verdict)
            kept.append(entry)
        self._heap = kept  # sorted: a heap already
        return dropped

    def pop_due(self, now: float) -> list[str]:
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        return due

    def next_due(self) -> float | None:
        """When the next job may be due: the first held, or the first the store holds past
        the edge, whichever is sooner."""
        first = self._heap[0][0] if self._heap else None
        if self.edge is not None and (first is None or self.edge[0] < first):
            return self.edge[0]
        return first

    def __len__(self) -> int:
        return len(self._heap)
