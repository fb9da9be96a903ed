"""The worker registry: who is connected, what they serve, their credit, their liveness. Pure."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator
from typing import Any

# What a job needs from a worker, as one string per job: its task name for kind `task`,
# or one of these for the kinds a worker runs only when started with the matching flag.
EXEC = "<exec>"
PICKLE = "<pickle>"
_FLAG_NEEDS = {"exec": EXEC, "pickle": PICKLE}
FLAG_NEEDS = frozenset(_FLAG_NEEDS.values())
_KIND_NEEDS = {"exec": EXEC, "function": PICKLE}


def requirement(kind: str, task: str | None) -> str:
    """The one capability a job of this kind (and task) needs from a worker."""
    return _KIND_NEEDS.get(kind) or task or ""


class Worker:
    __slots__ = (
        "identity", "name", "host", "pid", "queues", "capacity", "tasks", "version",
        "flags", "running", "last_seen", "last_sent", "expiry_s", "joined_at", "processed",
        "failed", "serves", "any_task",
    )

    def __init__(self, identity: bytes, ready: dict[str, Any], mono: float, wall: float,
                 expiry_s: float) -> None:
        self.identity = identity
        self.name = str(ready["name"])
        self.host = str(ready.get("host", ""))
        self.pid = ready.get("pid")
        self.queues = tuple(str(q) for q in ready["queues"]) or ("default",)
        self.capacity = max(int(ready["capacity"]), 0)
        self.tasks = [str(t) for t in ready.get("tasks") or []]
        self.version = str(ready.get("version", ""))
        self.flags = [str(f) for f in ready.get("flags") or []]
        # A READY without a `tasks` list (an older or foreign worker) serves every task name.
        self.any_task = ready.get("tasks") is None
        self.serves = frozenset(self.tasks) | {_FLAG_NEEDS[f] for f in self.flags
                                               if f in _FLAG_NEEDS}
        self.running: set[str] = set()
        self.last_seen = mono
        self.last_sent = mono
        self.expiry_s = expiry_s
        self.joined_at = wall
        self.processed = 0
        self.failed = 0

    @property
    def credit(self) -> int:
        return self.capacity - len(self.running)

    def can_run(self, need: str) -> bool:
        return need in self.serves or (self.any_task and need not in FLAG_NEEDS)

    def pick(self, needs: Collection[str]) -> list[str]:
        """Those of `needs` (a queue's non-empty requirement keys) this worker can run.

        Iterates the smaller side: a worker with hundreds of tasks facing a
        queue that holds jobs of one task looks at one key, not hundreds.
        """
        if self.any_task:
            return [n for n in needs if self.can_run(n)]
        serves = self.serves
        if len(needs) <= len(serves):
            return [n for n in needs if n in serves]
        return [n for n in serves if n in needs]

    def to_wire(self, mono: float) -> dict[str, Any]:
        return {
            "name": self.name, "host": self.host, "pid": self.pid, "queues": list(self.queues),
            "capacity": self.capacity, "running": sorted(self.running), "tasks": self.tasks,
            "version": self.version, "flags": self.flags, "joined_at": self.joined_at,
            "processed": self.processed, "failed": self.failed,
            "last_seen_s": round(mono - self.last_seen, 3),
        }


class WorkerRegistry:
    """Workers by ROUTER identity, with the LRU order of those that have free credit.

    `_free` is derived from credit and only changed through `note_*`
    methods, so it cannot drift from the workers' running sets.
    """

    def __init__(self) -> None:
        self._by_identity: dict[bytes, Worker] = {}
        self._by_name: dict[str, bytes] = {}  # an index of _by_identity: names are unique
        self._free: OrderedDict[bytes, None] = OrderedDict()

    def add(self, worker: Worker) -> None:
        """Register `worker`; the caller has removed any other registration of its name."""
        self._by_identity[worker.identity] = worker
        self._by_name[worker.name] = worker.identity
        self._refresh(worker)

    def remove(self, identity: bytes) -> Worker | None:
        self._free.pop(identity, None)
        worker = self._by_identity.pop(identity, None)
        if worker is not None and self._by_name.get(worker.name) == identity:
            del self._by_name[worker.name]
        return worker

    def get(self, identity: bytes) -> Worker | None:
        return self._by_identity.get(identity)

    def by_name(self, name: str | None) -> Worker | None:
        identity = self._by_name.get(name) if name is not None else None
        return self._by_identity.get(identity) if identity is not None else None

    def any_can_run(self, queue: str, need: str) -> bool:
        """Whether some live worker serves `queue` and can run jobs needing `need`."""
        return any(queue in w.queues and w.can_run(need) for w in self._by_identity.values())

    def __iter__(self) -> Iterator[Worker]:
        return iter(list(self._by_identity.values()))

    def __len__(self) -> int:
        return len(self._by_identity)

    def free_in_lru_order(self) -> list[Worker]:
        return [self._by_identity[i] for i in self._free]

    def note_assigned(self, worker: Worker, job_id: str) -> None:
        """A job went to `worker`: it becomes the most recently used."""
        worker.running.add(job_id)
        self._free.pop(worker.identity, None)
        self._refresh(worker)

    def note_released(self, worker: Worker, job_id: str) -> bool:
        """`job_id` no longer holds credit on `worker`; False if it held none."""
        if job_id not in worker.running:
            return False
        worker.running.discard(job_id)
        self._refresh(worker)
        return True

    def set_capacity(self, worker: Worker, capacity: int) -> None:
        worker.capacity = capacity
        self._refresh(worker)

    def _refresh(self, worker: Worker) -> None:
        if worker.credit > 0:
            if worker.identity not in self._free:
                self._free[worker.identity] = None
        else:
            self._free.pop(worker.identity, None)
