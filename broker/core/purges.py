"""Purges of deep queues under way: which stored jobs each is still to cancel. Pure data.

A purge cancels every waiting job of its queue (queued, scheduled, deferred). Those the
broker holds in memory it cancels at once; those deep in the queue, in the store only, the
engine cancels a page per turn, reading them in order of submission up to the purge's
`mark` (the last order given before it). Meanwhile none of them may start: a job read from
the store that a purge `covers` is left for its page. The jobs that were running when the
purge came are not covered (they go on, and so do their retries).

What it is still to cancel (`left`) is counted, so a second purge of the queue meanwhile
says how many more it cancels. The marks and counts are stored with each commit (in `meta`),
so a restarted broker finishes a purge it had begun. Not stored: which jobs were running
when it came, so after a restart a job that was running then and waits again is cancelled
by the purge too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MARK = "purge:"  # meta keys: a purge under way, the last order it cancels ...
LEFT = "purge_left:"  # ... and how many stored jobs it is still to cancel


@dataclass(slots=True)
class Purge:
    mark: int
    left: int
    spared: set[str] = field(default_factory=set)  # running when the purge came
    stage: int = 0  # which of the waiting states its pages read now
    after: str = ""  # the last id read in that state: pages go on in id order


class Purges:
    def __init__(self, meta: dict[str, int]) -> None:
        self.under_way: dict[str, Purge] = {
            key[len(MARK):]: Purge(value, meta.get(LEFT + key[len(MARK):], 0))
            for key, value in meta.items() if key.startswith(MARK) and value}
        self._rows: dict[str, int] = {}  # meta rows for the next commit

    def __bool__(self) -> bool:
        return bool(self.under_way)

    def __contains__(self, queue: object) -> bool:
        return queue in self.under_way

    def begin(self, queue: str, mark: int, left: int, spared: set[str]) -> None:
        """A purge of `queue` up to `mark` with `left` stored jobs to cancel, but those in
        `spared`. A purge still under way there is taken over: its jobs are among them."""
        self.under_way[queue] = Purge(mark, left, spared)
        self._note(queue)

    def left(self, queue: str) -> int:
        purge = self.under_way.get(queue)
        return purge.left if purge is not None else 0

    def covers(self, queue: str, order: int, job_id: str) -> bool:
        """Whether a purge under way is to cancel this stored job."""
        purge = self.under_way.get(queue)
        return purge is not None and order <= purge.mark and job_id not in purge.spared

    def cancelled(self, queue: str) -> None:
        """One of the stored jobs a purge covers was cancelled (by its page, or a CANCEL)."""
        purge = self.under_way.get(queue)
        if purge is not None:
            purge.left -= 1
            self._note(queue)

    def finish(self, queue: str) -> None:
        self.under_way.pop(queue, None)
        self._note(queue)

    def _note(self, queue: str) -> None:
        purge = self.under_way.get(queue)
        self._rows[queue] = 0 if purge is None else purge.mark

    def changes(self) -> dict[str, Any]:
        """The meta rows to store with the next commit."""
        rows: dict[str, Any] = {}
        for queue, mark in self._rows.items():
            rows[MARK + queue] = mark
            rows[LEFT + queue] = self.left(queue)
        return rows

    def committed(self) -> None:
        self._rows = {}
