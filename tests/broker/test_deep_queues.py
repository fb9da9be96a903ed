"""Deep queues in the scheduling core: a window of each queue in memory, the rest in the store.

Every test runs an engine whose windows hold 10 jobs, so a queue of a few hundred is deep:
most of it is in the store only, and what the windows give out must be what a broker holding
everything in memory would (tests/broker/test_deep_queues_model.py compares the two).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p

from .test_engine import (
    FakeClock,
    event_types,
    heartbeat,
    past_restart_grace,
    ready,
    result,
    sent_jobs,
)

WINDOW = 10


def deep_engine(path: Path, clock: FakeClock | None = None) -> Engine:
    return Engine(Store(path), clock or FakeClock(),
                  EngineConfig(heartbeat_interval_s=1.0, queue_window=WINDOW))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return deep_engine(tmp_path)


def restarted(engine: Engine) -> Engine:
    engine.flush()
    engine.store.close()
    return past_restart_grace(deep_engine(engine.store.path.parent, engine.clock))


def run_all(engine: Engine, identity: bytes = b"w", ok: bool = True) -> list[str]:
    """Turns of dispatch, results and commits until nothing more is sent to `identity`; the
    ids of the jobs it ran, in order."""
    ran: list[str] = []
    while True:
        heartbeat(engine, identity)  # the fake clock leaps: the worker stays alive
        busy = engine.tick() == 0.0  # a purge under way asks for the next turn at once
        engine.dispatch()
        jobs = sent_jobs(engine).get(identity, [])
        for job in jobs:
            result(engine, identity, job, ok=ok, value=None if ok else
                   {"type": "Boom", "message": "no", "traceback": None})
            ran.append(job["id"])
        engine.flush()
        if not jobs and not busy:
            return ran


def submit(engine: Engine, count: int, **fields) -> list[str]:
    ids = engine.submit([{"task": "t", **fields} for _ in range(count)])
    engine.flush()
    return ids


def test_memory_holds_a_window_of_a_deep_queue_and_counts_all_of_it(engine: Engine) -> None:
    ids = submit(engine, 500)
    assert len(engine.active) == WINDOW
    assert engine.job_counts()["queued"] == 500
    assert engine.queue_depths()["default"]["queued"] == 500
    assert engine.unserved() == {"default": 500}  # no worker: deep or not, all unserved
    assert engine.store.counts() == {("default", "queued"): 500}
    ready(engine, b"w", "w", capacity=1)
    assert run_all(engine) == ids  # FIFO across every page
    assert len(engine.active) == 0 and engine.job_counts()["succeeded"] == 500


def test_priorities_hold_across_the_windows_edge(engine: Engine) -> None:
    low = submit(engine, 200)
    high = submit(engine, 3, priority=5)  # behind 200 low ones, 190 of them in the store only
    middle = submit(engine, 2, priority=1)
    ready(engine, b"w", "w", capacity=1)
    assert run_all(engine) == high + middle + low


def test_a_backlog_of_mixed_priorities_is_read_in_their_order(engine: Engine) -> None:
    ids = engine.submit([{"task": "t", "priority": i % 3} for i in range(90)])
    engine.flush()  # the window keeps the best 10: the store has all three priorities
    ready(engine, b"w", "w", capacity=1)
    assert run_all(engine) == ids[2::3] + ids[1::3] + ids[0::3]


def test_a_job_submitted_past_the_edge_while_the_window_drains_runs_in_its_order(
        engine: Engine) -> None:
    first = submit(engine, 30)
    ready(engine, b"w", "w", capacity=25)
    late = engine.submit([{"task": "t"}])  # refused by the window, not committed yet ...
    engine.dispatch()  # ... when the window runs dry and reads the store past it
    sent = [job["id"] for job in sent_jobs(engine)[b"w"]]
    assert sent == first[:25]
    engine.flush()
    for job_id in sent:
        engine.worker_message(b"w", p.WorkerMessage(p.RESULT, [
            {"job_id": job_id, "attempt": 1, "ok": True, "result": None}]))
    assert run_all(engine) == first[25:] + late
    assert engine.job_counts()["succeeded"] == 31


def test_a_task_no_worker_runs_never_holds_back_another(engine: Engine) -> None:
    submit(engine, 100, task="nobody")
    other = submit(engine, 20, task="t")
    ready(engine, b"w", "w", capacity=1, tasks=["t"])
    assert run_all(engine) == other
    assert engine.unserved() == {"default": 100}
    assert engine.lookup(engine.store.list({"status": "queued"}, None, 1)[0]["id"])[
        "unserved"] is True


def test_a_delayed_job_deep_in_the_backlog_runs_at_its_time(engine: Engine) -> None:
    wall = engine.clock.wall()
    later = engine.submit([{"task": "t", "run_at": wall + 3600 + i} for i in range(100)])
    engine.flush()
    [soon] = submit(engine, 1, run_at=wall + 10)  # submitted last, due first
    submit(engine, 100)  # and a deep queue in front of it
    assert len(engine.active) <= 2 * WINDOW + 1  # a window of each, and the one due soon
    ready(engine, b"w", "w", capacity=1)
    engine.clock.t += 9
    heartbeat(engine, b"w")
    engine.tick()
    assert engine.lookup(soon)["status"] == "scheduled"
    engine.clock.t += 1
    ran = run_all(engine)
    assert soon in ran and engine.lookup(soon)["status"] == "succeeded"
    assert all(engine.lookup(job_id)["status"] == "scheduled" for job_id in later)
    engine.clock.t += 3600 + 100
    assert run_all(engine) == later  # all due now: in the order they came due


def test_a_restart_loads_the_windows_not_the_backlog(engine: Engine) -> None:
    low = submit(engine, 300)
    high = submit(engine, 5, priority=3)
    wall = engine.clock.wall()
    delayed = engine.submit([{"task": "t", "run_at": wall + 100 + i} for i in range(50)])
    again = restarted(engine)
    assert len(again.active) <= 2 * WINDOW
    assert again.job_counts()["queued"] == 305 and again.job_counts()["scheduled"] == 50
    assert again.unserved() == {"default": 305}
    ready(again, b"w", "w", capacity=1)
    assert run_all(again) == high + low
    again.clock.t += 200
    assert run_all(again) == delayed


def test_a_running_job_requeued_into_a_deep_queue_waits_its_turn(engine: Engine) -> None:
    [first] = engine.submit([{"task": "t", "max_retries": 1, "retry_backoff_s": 0}])
    ready(engine, b"w", "w", capacity=1)
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    rest = submit(engine, 50)
    result(engine, b"w", job, ok=False, value={"type": "Boom", "message": "no",
                                               "traceback": None})
    engine.flush()
    assert engine.lookup(first)["status"] == "queued"
    assert run_all(engine) == [first, *rest]  # its order is its first submit's


def test_deferred_jobs_past_the_window_are_promoted_through_the_store(engine: Engine) -> None:
    [parent] = submit(engine, 1, queue="parents")
    children = submit(engine, 60, depends_on=[parent])
    grandchildren = engine.submit([{"task": "t", "depends_on": [child]} for child in children])
    engine.flush()
    assert len(engine.deps.awaiting) <= WINDOW * 1.5 and engine.job_counts()["deferred"] == 120
    ready(engine, b"w", "w", capacity=1, queues=["parents", "default"])
    ran = run_all(engine)
    assert ran[0] == parent and sorted(ran[1:]) == sorted(children + grandchildren)
    assert ran.index(children[-1]) < ran.index(grandchildren[-1])
    assert engine.job_counts()["deferred"] == 0 and engine.job_counts()["succeeded"] == 121


def test_a_failed_dependency_cancels_its_dependents_in_the_store_down_the_chain(
        engine: Engine) -> None:
    [parent] = submit(engine, 1)
    children = submit(engine, 40, depends_on=[parent])
    grandchildren = engine.submit([{"task": "t", "depends_on": [child]} for child in children])
    again = restarted(engine)  # a restart reads a window of the deferred jobs only
    assert len(again.deps.awaiting) == WINDOW
    ready(again, b"w", "w", capacity=1)
    assert run_all(again, ok=False) == [parent]
    for job_id in children + grandchildren:
        found = again.lookup(job_id)
        assert (found["status"], found["error"]["type"]) == ("cancelled", "DependencyFailed")
    assert again.job_counts()["deferred"] == 0


def test_a_purge_of_a_deep_queue_cancels_every_waiting_job_and_starts_none(
        engine: Engine) -> None:
    wall = engine.clock.wall()
    queued = submit(engine, 95)
    scheduled = submit(engine, 25, run_at=wall + 5)
    [parent] = submit(engine, 1, queue="other")
    deferred = submit(engine, 30, depends_on=[parent])
    kept = submit(engine, 3, queue="other")
    ready(engine, b"w", "w", capacity=1, queues=["default"])
    engine.events.take_pending()
    assert engine.purge("default") == 150
    assert engine.tick() == 0.0  # the rest of it goes on, a page per turn
    later = submit(engine, 2)  # submitted after the purge: not purged
    engine.clock.t += 10
    ran = run_all(engine)
    assert ran == later
    for job_id in queued + scheduled + deferred:
        assert engine.lookup(job_id)["status"] == "cancelled"
    assert event_types(engine).count("job.cancelled") == 150
    assert engine.job_counts()["cancelled"] == 150
    assert [engine.lookup(job_id)["status"] for job_id in [parent, *kept]] == ["queued"] * 4
    assert engine.tick() > 0  # done: the loop sleeps again


def test_a_purge_cut_short_by_a_restart_is_finished_after_it(engine: Engine) -> None:
    submit(engine, 200)
    assert engine.purge("default") == 200
    engine.flush()  # a page is cancelled at the next turn's tick: the broker stops first
    again = restarted(engine)
    ready(again, b"w", "w", capacity=1)
    assert run_all(again) == []
    assert again.job_counts()["cancelled"] == 200 and again.job_counts()["queued"] == 0


def test_a_cancel_and_a_wait_reach_a_job_deep_in_the_store(engine: Engine) -> None:
    ids = submit(engine, 100)
    deep = ids[-1]
    assert deep not in engine.active
    assert engine.settled([deep, "nope"]) == ({}, ["nope"])  # waiting, not ended
    assert engine.cancel(deep)["status"] == "cancelled"
    engine.flush()
    ended, unknown = engine.settled([deep])
    assert ended[deep]["status"] == "cancelled" and unknown == []
    ready(engine, b"w", "w", capacity=1)
    assert run_all(engine) == ids[:-1]


def test_a_worker_back_after_a_restart_keeps_a_job_it_started_from_deep_in_the_queue(
        engine: Engine) -> None:
    ids = submit(engine, 100)
    again = restarted(engine)
    deep = ids[50]
    assert deep not in again.active
    ready(again, b"w", "w", capacity=1, prefetch=0, running=[{"job_id": deep, "attempt": 1}])
    assert again.lookup(deep)["status"] == "running"
    assert sent_jobs(again) == {}
