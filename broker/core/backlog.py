"""The backlog: the waiting jobs the broker leaves in the store, read in a page at a time.

The engine keeps in memory, per queue and requirement, a window of the next ready jobs
(`ReadyQueues`), and a window of the jobs waiting for a time (`Timeline`), each up to
`window` jobs; the rest of a deep queue stays in the store. This module decides what
enters and leaves those windows:

- a job made ready (or delayed) past its window's edge is refused; it stays in memory only
  until the turn's commit has stored it, then leaves (`drop`);
- a window that grew past 1.5 x `window` (a burst of submits) keeps its best `window`
  jobs after the commit, the rest leave (`drop`);
- a window at or below half its size is topped up from the store before dispatch (`refill_ready`,
  `refill_due`): the next page after its edge, in the store's index order. Refills may run
  before the turn's commit: a job the store does not have yet (or has in an older state)
  is in memory, so a page skips it (`live`), and a job refused this turn that the new edge
  now takes in is put in the window there and then.

Memory is then `window` jobs per (queue, requirement) with a backlog, whatever its depth.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable

from zjobs.broker.core.queues import FIRST, Due, Key, ReadyQueues, Timeline
from zjobs.broker.stores.store import Store
from zjobs.broker.wire.jobs import Job, JobState

S = JobState

TRIM_AT = 1.5  # a window is cut back to `window` jobs once it holds this many times that


def ready_key(job: Job) -> Key:
    return -job.priority, job.order


def due_key(job: Job) -> Due:
    return job.run_at or 0.0, job.order


class Backlog:
    """What enters and leaves the ready windows and the timeline; the store reads that
    fill them. `since`: the broker's start (wall clock), see `Store.due_page`."""

    def __init__(self, store: Store, ready: ReadyQueues, timeline: Timeline, window: int,
                 since: float) -> None:
        self.store = store
        self.ready = ready
        self.timeline = timeline
        self.window = max(1, window)
        self.since = since
        self._refused: dict[tuple[str, str], list[Job]] = {}  # past a ready window's edge
        self._refused_due: list[Job] = []  # past the timeline's edge

    # ------------------------------------------------------------ refused this turn

    def refuse(self, job: Job, need: str) -> None:
        """`job` is ready but past its window's edge: it leaves memory after the commit."""
        refused = self._refused.get((job.queue, need))
        if refused is None:
            refused = self._refused[(job.queue, need)] = []
        refused.append(job)

    def refuse_due(self, job: Job) -> None:
        """`job` waits for a time past the timeline's edge: it leaves after the commit."""
        self._refused_due.append(job)

    def refused(self) -> bool:
        """Whether some job was refused this turn."""
        return bool(self._refused or self._refused_due)

    # ------------------------------------------------------------ reading in

    def recover(self, needs: Iterable[tuple[str, str]], now: float,
                skip: Container[str] = ()) -> list[Job]:
        """A restarted broker's windows: the first page of each (queue, requirement) with
        queued jobs (those of queues in `skip`: none yet, read once they may be), and the
        first page of the timeline. The jobs read."""
        loaded: list[Job] = []
        for queue, need in needs:
            if queue in skip:
                self.ready.load(queue, need, [], [], FIRST)
            else:
                loaded += self._ready_page(queue, need, None, self.window, now, _nothing)
        return loaded + self._due_page(None, self.window, _nothing)

    def refill_ready(self, now: float, live: Callable[[str], bool],
                     skip: Container[str] = ()) -> tuple[list[Job], int]:
        """The next page into each window that holds at most half its size and has more in
        the store (but those of queues in `skip`); the jobs read, and how many pages."""
        loaded: list[Job] = []
        pages = 0
        low = self.window // 2
        for (queue, need), edge in self.ready.edges().items():
            size = self.ready.size(queue, need)
            if size <= low and queue not in skip:
                loaded += self._ready_page(queue, need, edge, self.window - size, now, live)
                pages += 1
        return loaded, pages

    def _ready_page(self, queue: str, need: str, edge: Key | None, limit: int, now: float,
                    live: Callable[[str], bool]) -> list[Job]:
        rows = self.store.ready_page(queue, need, None if edge == FIRST else edge, limit, now)
        new_edge = ready_key(rows[-1]) if len(rows) == limit else None
        fresh = [job for job in rows if not live(job.id)]
        taken = self._take_refused(queue, need, new_edge)
        entries = fresh + taken
        self.ready.load(queue, need, [ready_key(job) for job in entries],
                        [job.id for job in entries], new_edge)
        return fresh

    def _take_refused(self, queue: str, need: str, edge: Key | None) -> list[Job]:
        """The jobs refused this turn that a window's new edge takes in."""
        refused = self._refused.get((queue, need))
        if not refused:
            return []
        taken = [job for job in refused if edge is None or ready_key(job) <= edge]
        if taken:
            self._refused[(queue, need)] = [job for job in refused
                                            if edge is not None and ready_key(job) > edge]
        return [job for job in taken if job.status == S.QUEUED]

    def refill_due(self, live: Callable[[str], bool]) -> list[Job]:
        """The next page into the timeline if it holds less than half its size and the store
        has more; the jobs read."""
        timeline = self.timeline
        if timeline.edge is None or len(timeline) > self.window // 2:
            return []
        return self._due_page(timeline.edge, self.window - len(timeline), live)

    def _due_page(self, edge: Due | None, limit: int, live: Callable[[str], bool]
                  ) -> list[Job]:
        rows = self.store.due_page(edge, limit, self.since)
        new_edge = due_key(rows[-1]) if len(rows) == limit else None
        fresh = [job for job in rows if not live(job.id)]
        taken = self._take_refused_due(new_edge)
        self.timeline.load([(*due_key(job), job.id) for job in fresh + taken], new_edge)
        return fresh

    def _take_refused_due(self, edge: Due | None) -> list[Job]:
        """The jobs refused by the timeline this turn that its new edge takes in."""
        refused = self._refused_due
        if not refused:
            return []
        self._refused_due = [job for job in refused if edge is not None and due_key(job) > edge]
        return [job for job in refused if (edge is None or due_key(job) <= edge)
                and job.status in (S.SCHEDULED, S.QUEUED)]

    # ------------------------------------------------------------ leaving memory

    def drop(self, active: dict[str, Job], is_waiting: Callable[[Job], bool]) -> list[str]:
        """After a commit: the ids of the jobs that leave memory (the store has them as they
        are): those refused this turn that still wait, and what the windows hold past 1.5 x
        `window` (`is_waiting`: held nowhere but the windows, not running nor buffered)."""
        gone = [job.id for jobs in self._refused.values() for job in jobs
                if active.get(job.id) is job and job.status == S.QUEUED and is_waiting(job)]
        gone += [job.id for job in self._refused_due
                 if active.get(job.id) is job and job.status in (S.SCHEDULED, S.QUEUED)
                 and is_waiting(job)]
        self._refused, self._refused_due = {}, []
        limit = int(self.window * TRIM_AT)
        for queue, need, size in list(self.ready.sizes()):
            if size > limit:
                gone += self.ready.trim(queue, need, self.window)
        if len(self.timeline) > limit:
            gone += self.timeline.trim(self.window, lambda job_id, due: _stored_due(
                active.get(job_id), due, is_waiting))
        return gone


def _nothing(job_id: str) -> bool:
    return False


def _stored_due(job: Job | None, due: float, is_waiting: Callable[[Job], bool]
                ) -> bool | None:
    """Whether the store has `job` waiting for `due` (True), only the timeline does (False:
    a restarted broker's hold), or the entry is stale (None)."""
    if job is None or job.status not in (S.SCHEDULED, S.QUEUED) or not is_waiting(job):
        return None
    return job.run_at == due
