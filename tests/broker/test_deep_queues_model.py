"""A broker with windows of 2 jobs gives out what one holding every job in memory gives out.

Hypothesis drives two engines with the same operations (submits with priorities, tasks,
queues and dependencies, runs, failures, cancels, purges, restarts) and compares the jobs
each runs, in order, and every job's status at the end.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store

from .test_engine import FakeClock, heartbeat, ready, result, sent_jobs

submits = st.tuples(st.just("submit"), st.lists(st.tuples(
    st.sampled_from([0, 0, 1, 5]), st.sampled_from(["a", "b"]), st.sampled_from(["q", "r"]),
    st.integers(-1, 40)), min_size=1, max_size=20))
runs = st.tuples(st.just("run"), st.integers(1, 15), st.booleans())
cancels = st.tuples(st.just("cancel"), st.integers(0, 200))
purges = st.tuples(st.just("purge"), st.sampled_from(["q", "r"]))
restarts = st.tuples(st.just("restart"))
operations = st.lists(st.one_of(submits, submits, runs, runs, cancels, purges, restarts),
                      max_size=25)


class Broker:
    """An engine and the ids it was given; `window` jobs per window."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.path = Path(tempfile.mkdtemp())
        self.clock = FakeClock()
        self.engine = self._open()
        self.ran: list[str] = []

    def _open(self) -> Engine:
        engine = Engine(Store(self.path), self.clock, EngineConfig(queue_window=self.window))
        ready(engine, b"w", "w", capacity=1, queues=["q", "r"])
        return engine

    def restart(self) -> None:
        self.engine.flush()
        self.engine.store.close()
        self.engine = self._open()

    def submit(self, specs: list[dict[str, Any]]) -> None:
        self.engine.submit(specs)
        self.engine.flush()

    def run(self, count: int, ok: bool) -> None:
        """Up to `count` jobs, one a turn; a purge under way finishes first."""
        engine = self.engine
        for _ in range(1000):
            if engine.tick() > 0.0:
                break
            engine.flush()
        else:
            raise AssertionError("a purge that never ends")
        for _ in range(count):
            heartbeat(engine, b"w")
            engine.tick()
            engine.dispatch()
            jobs = sent_jobs(engine).get(b"w", [])
            for job in jobs:
                result(engine, b"w", job, ok=ok, value=None if ok else {
                    "type": "Boom", "message": "no", "traceback": None})
                self.ran.append(job["id"])
            engine.flush()
            if not jobs:
                return

    def cancel(self, job_id: str) -> None:
        try:
            self.engine.cancel(job_id)
        except Exception:  # noqa: BLE001 - ended already, or unknown: the same in both
            pass
        self.engine.flush()

    def purge(self, queue: str) -> int:
        """Purge `queue`, and turns until the purge is done (a deep one takes a few)."""
        count = self.engine.purge(queue)
        self.engine.flush()
        self.run(0, True)
        return count

    def statuses(self, ids: list[str]) -> list[str]:
        return [self.engine.lookup(job_id)["status"] for job_id in ids]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_a_deep_broker_runs_what_an_all_in_memory_one_runs(ops: list[tuple]) -> None:
    deep, whole = Broker(2), Broker(100_000)
    try:
        _compare(deep, whole, ops)
    finally:
        deep.engine.store.close()
        whole.engine.store.close()


def _compare(deep: Broker, whole: Broker, ops: list[tuple]) -> None:
    ids: list[str] = []
    for op in ops:
        if op[0] == "submit":
            specs = []
            for priority, task, queue, dep in op[1]:
                spec = {"id": f"j{len(ids)}", "task": task, "queue": queue,
                        "priority": priority}
                if 0 <= dep < len(ids):
                    spec["depends_on"] = [ids[dep]]
                ids.append(spec["id"])
                specs.append(spec)
            deep.submit(specs)
            whole.submit(specs)
        elif op[0] == "run":
            deep.run(op[1], op[2])
            whole.run(op[1], op[2])
            assert deep.ran == whole.ran
        elif op[0] == "cancel" and ids:
            deep.cancel(ids[op[1] % len(ids)])
            whole.cancel(ids[op[1] % len(ids)])
        elif op[0] == "purge":
            assert deep.purge(op[1]) == whole.purge(op[1])
        elif op[0] == "restart":
            deep.restart()
            whole.restart()
    deep.run(1000, True)
    whole.run(1000, True)
    assert deep.ran == whole.ran
    assert deep.statuses(ids) == whole.statuses(ids)
    assert deep.engine.job_counts() == whole.engine.job_counts()
    assert deep.engine.unserved() == whole.engine.unserved()
