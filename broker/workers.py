"""The worker registry: who is connected, what they serve, their credit, their liveness. Pure."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any


class Worker:
    __slots__ = (
        "identity", "name", "host", "pid", "queues", "capacity", "tasks", "version",
        "flags", "running", "last_seen", "last_sent", "expiry_s", "joined_at", "processed",
        "failed",
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
        self._free: OrderedDict[bytes, None] = OrderedDict()

    def add(self, worker: Worker) -> None:
        self._by_identity[worker.identity] = worker
        self._refresh(worker)

    def remove(self, identity: bytes) -> Worker | None:
        self._free.pop(identity, None)
        return self._by_identity.pop(identity, None)

    def get(self, identity: bytes) -> Worker | None:
        return self._by_identity.get(identity)

    def by_name(self, name: str) -> Worker | None:
        return next((w for w in self._by_identity.values() if w.name == name), None)

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
