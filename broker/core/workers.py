"""The worker registry: who is connected, what they serve, their credit, their liveness. Pure.

A registered peer is one DEALER connection. A `zjobs worker` process registers itself (its
async tasks, `exec` programs and thread tasks) and each of its sync slots, a process of its
own that is a peer too; a slot's `READY` names the worker it belongs to in `group`, and the
views (`WORKERS`, `STATS`, `worker.*` events) show a group as one worker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator
from typing import Any

from zjobs.broker.wire.limits import CAPACITY_MAX as MAX_CAPACITY
from zjobs.broker.wire.limits import PREFETCH_MAX as MAX_PREFETCH
from zjobs.broker.wire.limits import READY_LIST_MAX as MAX_LIST
from zjobs.broker.wire.limits import TASK_MAX_LEN as MAX_NAME
from zjobs.broker.wire.limits import WORKER_NAME_MAX_LEN
from zjobs.broker.wire.text import check_text, texts_problem

# What a job needs from a worker, as one string per job: its task name for kind `task`,
# or one of these for the kinds a worker runs only when started with the matching flag.
EXEC = "<exec>"
PICKLE = "<pickle>"
_FLAG_NEEDS = {"exec": EXEC, "pickle": PICKLE}
FLAG_NEEDS = frozenset(_FLAG_NEEDS.values())
_KIND_NEEDS = {"exec": EXEC, "function": PICKLE}

# Bounds on what a READY may claim (MAX_CAPACITY, MAX_PREFETCH and MAX_LIST, from the
# limits): a worker is believed within these, whatever it says.
MAX_INTERVAL_FACTOR = 10   # a claimed heartbeat interval counts up to 10 x the broker's


def requirement(kind: str, task: str | None) -> str:
    """The one capability a job of this kind (and task) needs from a worker."""
    return _KIND_NEEDS.get(kind) or task or ""


def _names(value: Any, field: str) -> list[str]:
    """A bounded list of bounded strings, or ValueError."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise ValueError(f"READY: {field} must be a list of at most {MAX_LIST} strings")
    problem = texts_problem(value, MAX_NAME)
    if problem is not None:
        raise ValueError(f"READY: every {field} entry {problem}")
    return list(value)


def _text(ready: dict[str, Any], field: str, default: str = "") -> str:
    """A READY's name-like field, held to the text rule (broker.text): it is stored and shown."""
    value = ready.get(field)
    if value is None or value == "":
        return default
    return check_text(value, f"READY: {field}", WORKER_NAME_MAX_LEN)


def _count(ready: dict[str, Any], field: str, default: int, high: int) -> int:
    value = ready.get(field, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"READY: {field} must be an integer")
    return min(max(value, 0), high)


def _needs(tasks: list[str], flags: list[str]) -> frozenset[str]:
    return frozenset(tasks) | {_FLAG_NEEDS[f] for f in flags if f in _FLAG_NEEDS}


class Cap:
    """At most `max` of the worker's jobs at once among those needing one of `needs` (a
    worker's blocking work, e.g. its `exec` programs, beside many async slots)."""

    __slots__ = ("max", "needs", "held")

    def __init__(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise ValueError("READY: a caps entry must be a map")
        self.max = _count(spec, "max", 0, MAX_CAPACITY)
        self.needs = _needs(_names(spec.get("tasks"), "caps tasks"),
                            _names(spec.get("flags"), "caps flags"))
        self.held = 0


class Worker:
    __slots__ = (
        "identity", "name", "group", "host", "pid", "queues", "capacity", "prefetch",
        "reports_starts", "compact", "slots", "own_slots", "tasks", "version", "flags",
        "running", "caps",
        "last_seen", "last_sent", "expiry_s", "joined_at", "processed", "failed", "serves",
        "any_task",
    )

    def __init__(self, identity: bytes, ready: dict[str, Any], mono: float, wall: float,
                 interval_s: float, liveness: int) -> None:
        """Raises ValueError (TypeError) when the READY claims something out of shape."""
        self.identity = identity
        self.name = check_text(ready["name"], "READY: name", WORKER_NAME_MAX_LEN)
        self.group = _text(ready, "group", self.name)
        self.host = _text(ready, "host")
        pid = ready.get("pid")
        self.pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
        self.queues = tuple(_names(ready["queues"], "queues")) or ("default",)
        self.capacity = _count(ready, "capacity", 0, MAX_CAPACITY)
        # A worker that asks for a window reports when each job starts (STARTED): until
        # then a job it holds is buffered, still `queued`.
        self.reports_starts = "prefetch" in ready
        self.prefetch = _count(ready, "prefetch", 0, MAX_PREFETCH)
        self.compact = ready.get("compact") is True
        self.slots = _count(ready, "slots", self.capacity, MAX_CAPACITY)
        # the sync slots a zjobs worker starts as peers of their own (its READY says how many)
        self.own_slots = self.slots if "slots" in ready else 0
        self.tasks = _names(ready.get("tasks"), "tasks")
        self.version = _text(ready, "version")
        self.flags = _names(ready.get("flags"), "flags")
        caps = ready.get("caps") or []
        if not isinstance(caps, list) or len(caps) > MAX_LIST:
            raise ValueError("READY: caps must be a list")
        self.caps = [Cap(spec) for spec in caps]
        # A READY without a `tasks` list (an older or foreign worker) serves every task name.
        self.any_task = ready.get("tasks") is None
        self.serves = _needs(self.tasks, self.flags)
        self.running: dict[str, str] = {}  # every job it holds (buffered or started) -> need
        self.last_seen = mono
        self.last_sent = mono
        claimed = ready.get("heartbeat_interval_s")
        if not isinstance(claimed, int | float) or isinstance(claimed, bool) \
                or not claimed == claimed:  # NaN
            claimed = interval_s
        # Believed within [the broker's interval, MAX_INTERVAL_FACTOR times it]: a worker can
        # neither be declared dead early by its own claim nor hide its death behind one.
        interval = min(max(float(claimed), interval_s), MAX_INTERVAL_FACTOR * interval_s)
        self.expiry_s = interval * liveness
        self.joined_at = wall
        self.processed = 0
        self.failed = 0

    @property
    def credit(self) -> int:
        return self.capacity + self.prefetch - len(self.running)

    @property
    def member(self) -> bool:
        """A sync slot of another worker: shown as part of its group."""
        return self.group != self.name

    def can_run(self, need: str) -> bool:
        return need in self.serves or (self.any_task and need not in FLAG_NEEDS)

    def pick(self, needs: Collection[str]) -> list[str]:
        """Those of `needs` (a queue's non-empty requirement keys) this worker can run now.

        Iterates the smaller side: a worker with hundreds of tasks facing a
        queue that holds jobs of one task looks at one key, not hundreds.
        """
        if self.any_task:
            picked = [n for n in needs if self.can_run(n)]
        else:
            serves = self.serves
            picked = [n for n in needs if n in serves] if len(needs) <= len(serves) \
                else [n for n in serves if n in needs]
        if self.caps:
            full = [cap.needs for cap in self.caps if cap.held >= cap.max]
            if full:
                picked = [n for n in picked if not any(n in needs for needs in full)]
        return picked

    def hold(self, job_id: str, need: str) -> None:
        self.running[job_id] = need
        for cap in self.caps:
            if need in cap.needs:
                cap.held += 1

    def release(self, job_id: str) -> bool:
        need = self.running.pop(job_id, None)
        if need is None:
            return False
        for cap in self.caps:
            if need in cap.needs:
                cap.held -= 1
        return True


def group_view(peers: list[Worker], started: Collection[str], mono: float) -> dict[str, Any]:
    """One worker as clients see it: its own registration and its sync slots, merged.

    `started` holds the ids of the jobs that have started (the others a peer holds are
    buffered, still queued).
    """
    lead = next((w for w in peers if not w.member), peers[0])
    running = sorted(j for w in peers for j in w.running if j in started)
    members = [w for w in peers if w.member]
    return {
        "name": lead.group, "host": lead.host, "pid": lead.pid, "queues": list(lead.queues),
        "capacity": lead.slots or lead.capacity,  # its sync slots; an async-only worker's
        # async ones
        "running": running, "tasks": sorted({t for w in peers for t in w.tasks}),
        "version": lead.version, "flags": sorted({f for w in peers for f in w.flags}),
        "joined_at": min(w.joined_at for w in peers),
        "processed": sum(w.processed for w in peers), "failed": sum(w.failed for w in peers),
        "last_seen_s": round(mono - min(w.last_seen for w in peers), 3),
        "buffered": sum(1 for w in peers for j in w.running if j not in started),
        "ready": not lead.member and len(members) >= lead.own_slots,  # all its slots are up
        "slots": [{"name": w.name, "pid": w.pid, "capacity": w.capacity,
                   "prefetch": w.prefetch, "running": sorted(j for j in w.running
                                                             if j in started)}
                  for w in sorted(members, key=lambda w: w.name)],
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

    def groups(self) -> dict[str, list[Worker]]:
        """The peers of each worker, by its name (a sync slot's group)."""
        found: dict[str, list[Worker]] = {}
        for worker in self._by_identity.values():
            found.setdefault(worker.group, []).append(worker)
        return found

    def free_in_lru_order(self) -> list[Worker]:
        return [self._by_identity[i] for i in self._free]

    def note_assigned(self, worker: Worker, job_id: str, need: str = "") -> None:
        """A job went to `worker`: it becomes the most recently used."""
        worker.hold(job_id, need)
        self._free.pop(worker.identity, None)
        self._refresh(worker)

    def note_released(self, worker: Worker, job_id: str) -> bool:
        """`job_id` no longer holds credit on `worker`; False if it held none."""
        if not worker.release(job_id):
            return False
        self._refresh(worker)
        return True

    def set_capacity(self, worker: Worker, capacity: int, prefetch: int | None = None) -> None:
        worker.capacity = capacity
        if prefetch is not None:
            worker.prefetch = prefetch
        self._refresh(worker)

    def _refresh(self, worker: Worker) -> None:
        if self._by_identity.get(worker.identity) is not worker:
            return  # removed already (its jobs are being handed back): never free again
        if worker.credit > 0:
            if worker.identity not in self._free:
                self._free[worker.identity] = None
        else:
            self._free.pop(worker.identity, None)
