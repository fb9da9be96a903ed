"""Dependencies in the scheduling core: deferred jobs, promotion, cancellation down a chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import CommandError

from .test_engine import FakeClock, past_restart_grace, ready, result, sent_jobs


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(Store(tmp_path), FakeClock(), EngineConfig(heartbeat_interval_s=1.0))


def status(engine: Engine, job_id: str) -> str:
    found = engine.lookup(job_id)
    assert found is not None
    return found["status"]


def run_one(engine: Engine, identity: bytes = b"w", ok: bool = True) -> str:
    """Dispatch to the worker `identity` and report its one job ended; the job's id."""
    engine.dispatch()
    [job] = sent_jobs(engine)[identity]
    result(engine, identity, job, ok=ok,
           value=None if ok else {"type": "Boom", "message": "no", "traceback": None})
    return job["id"]


def test_a_dependent_is_deferred_until_its_dependency_succeeds(engine: Engine) -> None:
    [parent] = engine.submit([{"task": "t"}])
    [child] = engine.submit([{"task": "t", "depends_on": [parent]}])
    assert status(engine, child) == "deferred"
    assert engine.job_counts()["deferred"] == 1
    assert engine.queue_depths()["default"]["deferred"] == 1
    ready(engine, b"w", "w")
    assert run_one(engine) == parent
    assert status(engine, child) == "queued"
    assert run_one(engine) == child
    assert engine.job_counts()["deferred"] == 0


def test_the_last_dependency_promotes_and_run_at_still_ahead_schedules(engine: Engine) -> None:
    first, second = engine.submit([{"task": "t"}, {"task": "t"}])
    run_at = engine.clock.wall() + 60
    [child] = engine.submit([{"task": "t", "depends_on": [first, second], "run_at": run_at}])
    ready(engine, b"w", "w")
    run_one(engine)
    assert status(engine, child) == "deferred"
    run_one(engine)
    assert status(engine, child) == "scheduled"


def test_a_failed_dependency_cancels_the_chain_with_dependency_failed(engine: Engine) -> None:
    ids = engine.submit([{"task": "t", "id": "a"}, {"task": "t", "id": "b", "depends_on": ["a"]},
                         {"task": "t", "id": "c", "depends_on": ["b"]}])
    assert ids == ["a", "b", "c"]
    ready(engine, b"w", "w")
    run_one(engine, ok=False)
    engine.flush()
    for job_id, cause in (("b", "a"), ("c", "b")):
        job = engine.store.get(job_id)
        assert job is not None and job["status"] == "cancelled"
        assert job["error"]["type"] == "DependencyFailed"
        assert cause in job["error"]["message"]
    assert engine.job_counts()["deferred"] == 0


def test_cancelling_a_deferred_job_cancels_its_dependents(engine: Engine) -> None:
    parent, child, grandchild = engine.submit(
        [{"task": "t", "id": "p"}, {"task": "t", "id": "c", "depends_on": ["p"]},
         {"task": "t", "id": "g", "depends_on": ["c"]}])
    engine.cancel(child)
    assert status(engine, grandchild) == "cancelled"
    assert status(engine, parent) == "queued"
    assert engine.deps.dependents == {} and engine.deps.awaiting == {}


def test_unknown_and_self_dependencies_are_refused_whole(engine: Engine) -> None:
    with pytest.raises(CommandError) as refused:
        engine.submit([{"task": "t"}, {"task": "t", "depends_on": ["nope"]}])
    assert refused.value.code == "not_found" and "nope" in refused.value.message
    with pytest.raises(CommandError) as refused:
        engine.submit([{"task": "t", "id": "me", "depends_on": ["me"]}])
    assert refused.value.code == "bad_request"
    with pytest.raises(CommandError):  # a later item of the batch is not known yet
        engine.submit([{"task": "t", "id": "x", "depends_on": ["y"]}, {"task": "t", "id": "y"}])
    assert engine.active == {}


def test_dependencies_already_ended_count_at_submit(engine: Engine) -> None:
    ok, bad = engine.submit([{"task": "t"}, {"task": "t"}])
    ready(engine, b"w", "w")
    run_one(engine)
    run_one(engine, ok=False)
    engine.flush()
    [met] = engine.submit([{"task": "t", "depends_on": [ok]}])
    [doomed] = engine.submit([{"task": "t", "depends_on": [ok, bad]}])
    assert status(engine, met) == "queued"
    assert status(engine, doomed) == "cancelled"
    engine.flush()
    doomed_job = engine.store.get(doomed)
    assert doomed_job is not None
    assert doomed_job["error"]["type"] == "DependencyFailed" and bad in \
        doomed_job["error"]["message"]


def test_ten_thousand_dependents_are_promoted_in_one_turn(engine: Engine) -> None:
    [parent] = engine.submit([{"task": "t"}])
    children = engine.submit([{"task": "t", "depends_on": [parent]} for _ in range(10_000)])
    engine.flush()
    assert engine.job_counts()["deferred"] == 10_000
    ready(engine, b"w", "w")
    run_one(engine)
    engine.flush()
    assert engine.job_counts()["deferred"] == 0
    assert engine.job_counts()["queued"] == 10_000
    assert engine.store.statuses(children[:3]) == dict.fromkeys(children[:3], "queued")


def test_deferred_jobs_survive_a_restart_and_are_promoted_after(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig())
    parent, child, grandchild = engine.submit(
        [{"task": "t", "id": "p"}, {"task": "t", "id": "c", "depends_on": ["p"]},
         {"task": "t", "id": "g", "depends_on": ["c"]}])
    engine.flush()
    engine.store.close()
    restarted = past_restart_grace(Engine(Store(tmp_path), clock, EngineConfig()))
    assert restarted.job_counts()["deferred"] == 2
    assert restarted.deps.dependents == {"p": {"c"}, "c": {"g"}}
    ready(restarted, b"w", "w")
    assert [run_one(restarted) for _ in range(3)] == [parent, child, grandchild]


def test_a_batch_item_may_depend_on_an_earlier_one_by_its_id(engine: Engine) -> None:
    engine.submit([{"task": "t", "id": "first"}, {"task": "t", "depends_on": ["first"]}])
    assert engine.job_counts()["deferred"] == 1
    events = [p.unpack(body) for _, body in engine.events.take_pending()]
    assert [e["status"] for e in events if e["type"] == "job.submitted"] == ["queued", "deferred"]
