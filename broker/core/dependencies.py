"""The dependency book: which deferred jobs await which others, in memory only.

A deferred job (one submitted with `depends_on`) waits here until every job it names has
succeeded, then is promoted; a dependency that fails, is cancelled or is unknown cancels
it, and its own dependents in turn, down the chain. The index is rebuilt from the store
after a restart (`rewire`); past a window of deferred jobs the rest stay in the store only
(`spilled`), found again through its dependency index when a dependency ends.

The job moves themselves (promote, cancel) are the engine's: the book is given them.
"""

from __future__ import annotations

from collections.abc import Callable

from zjobs.broker.stores.store import Store
from zjobs.broker.wire.jobs import TERMINAL, Job, JobState, dependencies

S = JobState




class DependencyBook:
    def __init__(self, store: Store, active: dict[str, Job], *,
                 live: Callable[[str], Job | None],
                 promote: Callable[[Job], None],
                 cancel: Callable[[Job, str, str | None], None],
                 purged: Callable[[Job], bool]) -> None:
        """`active`: the engine's unfinished jobs in memory (the book reads jobs in there);
        `live`: a job the engine holds, or None; `promote`: a job whose dependencies all
        succeeded moves on; `cancel`: a job is cancelled because dependency `dep` ended
        with `status` (None: unknown); `purged`: whether a purge under way is to cancel it."""
        self.store = store
        self.active = active
        self.live = live
        self.promote = promote
        self.cancel = cancel
        self.purged = purged
        self.dependents: dict[str, set[str]] = {}  # a dependency -> the jobs waiting on it
        self.awaiting: dict[str, set[str]] = {}  # a deferred job -> the ones it still awaits
        self.spilled = False  # some deferred jobs are in the store only

    def rewire(self, deferred: list[Job]) -> None:
        """Rebuild the index of the deferred jobs a restarted broker loaded."""
        needed = {dep for job in deferred for dep in dependencies(job)}
        ended = self.store.statuses(dep for dep in needed if dep not in self.active)
        for job in deferred:
            self.defer(job, ended)

    def defer(self, job: Job, ended: dict[str, str] | None = None,
              cascade: list[tuple[str, str]] | None = None) -> None:
        """Index a deferred job under the dependencies it still awaits; promote it if it
        awaits none, cancel it if one has failed or been cancelled. `ended`: the stored
        status of dependencies not in memory (looked up in the store if not given).
        `cascade`: where a `settle` under way collects what ended (else it settles here)."""
        unmet = set()
        for dep in dependencies(job):
            status = self._status(dep, ended)
            if status == S.SUCCEEDED:
                continue
            if status is None or status in TERMINAL:
                self.cancel(job, dep, status)
                if cascade is None:
                    self.settle(job.id, S.CANCELLED)
                else:
                    cascade.append((job.id, S.CANCELLED))
                return
            unmet.add(dep)
        if not unmet:
            self.promote(job)
            return
        self.awaiting[job.id] = unmet
        for dep in unmet:
            self.dependents.setdefault(dep, set()).add(job.id)

    def _status(self, dep: str, ended: dict[str, str] | None) -> str | None:
        live = self.live(dep)
        if live is not None:
            return live.status
        if ended is None:
            ended = self.store.statuses([dep])
        return ended.get(dep)

    def settle(self, job_id: str, status: str) -> None:
        """A job ended: its dependents are promoted once it was the last they awaited, or
        cancelled, and theirs in turn, down the chain (a loop: a chain may be long). While
        some deferred jobs are in the store only, its dependents there are read in too."""
        ended = [(job_id, status)]
        while ended:
            done, status = ended.pop()
            for child_id in self.dependents.pop(done, ()):
                unmet = self.awaiting.get(child_id)
                child = self.active.get(child_id)
                if unmet is None or child is None:
                    continue
                if status != S.SUCCEEDED:
                    self.cancel(child, done, status)
                    ended.append((child_id, S.CANCELLED))
                    continue
                unmet.discard(done)
                if not unmet:
                    del self.awaiting[child_id]
                    self.promote(child)
            if self.spilled:
                self._settle_stored(done, ended)

    def _settle_stored(self, done: str, ended: list[tuple[str, str]]) -> None:
        """The deferred dependents of `done` that only the store holds: read in, and looked
        at again as a submit would (promoted, cancelled into `ended`, or indexed)."""
        ids = [job_id for job_id in self.store.dependents(done) if self.live(job_id) is None]
        for child in self.store.load_jobs(ids) if ids else ():
            if child.status == S.DEFERRED and not self.purged(child):
                self.active[child.id] = child
                self.defer(child, cascade=ended)

    def forget(self, job_id: str) -> None:
        """A deferred job ended (cancelled, or taken back): it awaits nothing any more."""
        for dep in self.awaiting.pop(job_id, ()):
            waiting = self.dependents.get(dep)
            if waiting is not None:
                waiting.discard(job_id)
                if not waiting:
                    del self.dependents[dep]

    def trim(self, keep: int) -> list[str]:
        """Forget the deferred jobs past the first `keep`; they stay in the store only (and
        the book says so: `spilled`). Returns their ids, for memory to drop them too."""
        dropped = list(self.awaiting)[keep:]
        for job_id in dropped:
            self.forget(job_id)
        self.spilled = True
        return dropped
