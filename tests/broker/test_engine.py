"""The scheduling core with a fake clock and a real store: no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from zjobs.broker.core.engine import RESTART_GRACE, Engine, EngineConfig, takeover_grace_s
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.errors import CommandError


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def wall(self) -> float:
        return 1_700_000_000.0 + self.t

    def mono(self) -> float:
        return self.t


def past_restart_grace(engine: Engine) -> Engine:
    """A restarted engine with jobs to run starts none for RESTART_GRACE heartbeat
    intervals (its workers re-register first): leap past them."""
    engine.clock.t += RESTART_GRACE * engine.config.heartbeat_interval_s  # type: ignore
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(Store(tmp_path), FakeClock(), EngineConfig(heartbeat_interval_s=1.0))


def ready(engine: Engine, identity: bytes, name: str, queues=("default",), capacity=1,
          **extra) -> None:
    body = {"name": name, "queues": list(queues), "capacity": capacity, **extra}
    engine.worker_message(identity, p.WorkerMessage(p.READY, [body]))


def heartbeat(engine: Engine, identity: bytes) -> None:
    engine.worker_message(identity, p.WorkerMessage(p.HEARTBEAT, []))


def sent(engine: Engine, command: bytes) -> dict[bytes, list[dict]]:
    _, to_workers = engine.outbox.take()
    return {ident: [p.unpack(b) for b in cmds[command]] for ident, cmds in to_workers.items()
            if command in cmds}


def event_types(engine: Engine) -> list[str]:
    return [p.unpack(body)["type"] for _, body in engine.events.take_pending()]


def sent_jobs(engine: Engine) -> dict[bytes, list[dict]]:
    _, to_workers = engine.outbox.take()
    return {ident: [p.unpack(b) for b in cmds[p.JOB]] for ident, cmds in to_workers.items()
            if cmds.get(p.JOB)}


def result(engine: Engine, identity: bytes, job: dict, ok: bool = True, value=None) -> None:
    body = {"job_id": job["id"], "attempt": job["attempt"], "ok": ok}
    body["result" if ok else "error"] = value
    engine.worker_message(identity, p.WorkerMessage(p.RESULT, [body]))


def test_priority_then_fifo(engine: Engine) -> None:
    ids = engine.submit([{"task": "t", "priority": pr} for pr in (0, 5, 0, 5)])
    ready(engine, b"w1", "w1", capacity=4)
    engine.dispatch()
    order = [j["id"] for j in sent_jobs(engine)[b"w1"]]
    assert order == [ids[1], ids[3], ids[0], ids[2]]


def test_credit_is_never_exceeded_and_lru_spreads_work(engine: Engine) -> None:
    engine.submit([{"task": "t"} for _ in range(10)])
    ready(engine, b"a", "a", capacity=2)
    ready(engine, b"b", "b", capacity=3)
    engine.dispatch()
    sent = sent_jobs(engine)
    assert len(sent[b"a"]) == 2 and len(sent[b"b"]) == 3
    result(engine, b"a", sent[b"a"][0], value=1)
    engine.dispatch()
    assert len(sent_jobs(engine)[b"a"]) == 1


def test_worker_only_gets_its_queues(engine: Engine) -> None:
    engine.submit([{"task": "t", "queue": "default"}, {"task": "t", "queue": "other"}])
    ready(engine, b"o", "o", queues=("other",), capacity=5)
    engine.dispatch()
    assert [j["queue"] for j in sent_jobs(engine)[b"o"]] == ["other"]


def test_delayed_job_waits_for_run_at(engine: Engine) -> None:
    clock = engine.clock
    [job_id] = engine.submit([{"task": "t", "run_at": clock.wall() + 5}])
    ready(engine, b"w", "w")
    engine.tick()
    engine.dispatch()
    assert sent_jobs(engine).get(b"w", []) == []
    assert engine.lookup(job_id)["status"] == "scheduled"
    clock.t += 2.5
    engine.worker_message(b"w", p.WorkerMessage(p.HEARTBEAT, []))
    clock.t += 2.49
    engine.tick()
    engine.dispatch()
    assert sent_jobs(engine).get(b"w", []) == []
    clock.t += 0.01
    engine.worker_message(b"w", p.WorkerMessage(p.HEARTBEAT, []))
    engine.tick()
    engine.dispatch()
    assert [j["id"] for j in sent_jobs(engine)[b"w"]] == [job_id]


def test_lost_worker_requeues_with_attempt_counted(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w1", "w1")
    engine.dispatch()
    engine.outbox.take()
    engine.clock.t += 3.5  # liveness 3 x interval 1 s, plus a little
    engine.tick()
    job = engine.lookup(job_id)
    assert job["status"] == "queued" and job["attempts"] == 1
    ready(engine, b"w2", "w2")
    engine.dispatch()
    [sent] = sent_jobs(engine)[b"w2"]
    assert sent["attempt"] == 2


def test_first_result_wins_late_one_dropped(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w1", "w1")
    engine.dispatch()
    [first] = sent_jobs(engine)[b"w1"]
    engine.clock.t += 3.5
    engine.tick()  # w1 lost
    ready(engine, b"w2", "w2")
    engine.dispatch()
    [second] = sent_jobs(engine)[b"w2"]
    result(engine, b"w2", second, value="from w2")
    ready(engine, b"w1", "w1")  # comes back and reports the old attempt
    result(engine, b"w1", first, value="late")
    assert engine.lookup(job_id)["result"] == "from w2"
    assert engine.stats["dropped_results"] == 1


def test_illegal_actions_are_errors(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    with pytest.raises(CommandError) as caught:
        engine.retry(job_id)
    assert caught.value.code == "conflict"
    engine.cancel(job_id)
    with pytest.raises(CommandError) as caught:
        engine.cancel(job_id)
    assert caught.value.code == "conflict"
    with pytest.raises(CommandError) as caught:
        engine.cancel("nope")
    assert caught.value.code == "not_found"


def test_bad_batch_is_refused_whole(engine: Engine) -> None:
    with pytest.raises(CommandError, match="job 1"):
        engine.submit([{"task": "ok"}, {"task": 5}])
    assert engine.active == {}


def test_events_count_up_by_one(engine: Engine) -> None:
    engine.submit([{"task": "t"} for _ in range(3)])
    seqs = [p.unpack(body)["seq"] for _, body in engine.events.take_pending()]
    assert seqs == [1, 2, 3]


def test_silent_attempt_expires_after_timeout_plus_grace(engine: Engine) -> None:
    engine.config.attempt_grace_s = 2.0
    [job_id] = engine.submit([{"task": "t", "timeout_s": 1}])
    ready(engine, b"w", "w")
    engine.dispatch()
    engine.outbox.take()
    engine.clock.t += 2.9
    engine.worker_message(b"w", p.WorkerMessage(p.HEARTBEAT, []))
    engine.tick()
    assert engine.lookup(job_id)["status"] == "running"
    engine.clock.t += 0.2
    engine.tick()
    job = engine.lookup(job_id)
    assert job["status"] == "failed" and job["error"]["type"] == "AttemptExpired"
    _, to_workers = engine.outbox.take()
    assert p.CANCEL_JOB in to_workers[b"w"]
    assert engine.workers.get(b"w").credit == 1


def test_failed_attempt_retries_with_backoff_then_fails(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t", "max_retries": 1, "retry_backoff_s": 4}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [sent] = sent_jobs(engine)[b"w"]
    result(engine, b"w", sent, ok=False, value={"type": "E", "message": "x", "traceback": None})
    job = engine.lookup(job_id)
    assert job["status"] == "queued" and 2 <= job["run_at"] - engine.clock.wall() <= 4
    engine.dispatch()
    assert sent_jobs(engine).get(b"w", []) == []
    engine.clock.t += 4
    engine.worker_message(b"w", p.WorkerMessage(p.HEARTBEAT, []))
    engine.tick()
    engine.dispatch()
    [again] = sent_jobs(engine)[b"w"]
    result(engine, b"w", again, ok=False, value={"type": "E", "message": "y", "traceback": None})
    job = engine.lookup(job_id)
    assert (job["status"], job["attempts"], job["error"]["message"]) == ("failed", 2, "y")


def test_idempotency_key_returns_the_first_job(engine: Engine) -> None:
    [first] = engine.submit([{"task": "t", "idempotency_key": "k"}])
    engine.flush()
    [second] = engine.submit([{"task": "t", "idempotency_key": "k"}])
    assert first == second
    [a, b] = engine.submit([{"task": "t", "idempotency_key": "z"},
                            {"task": "t", "idempotency_key": "z"}])
    assert a == b


def test_purge_removes_only_jobs_past_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig())
    old, recent, pending = engine.submit([{"task": "t"}, {"task": "t"}, {"task": "t"}])
    engine.cancel(old)
    engine.flush()
    clock.t += 100
    engine.cancel(recent)
    engine.flush()
    purged = engine.store.purge_finished(clock.wall() - 50)
    engine.forget_purged(purged)
    assert engine.lookup(old) is None
    assert engine.lookup(recent)["status"] == "cancelled"
    assert engine.lookup(pending)["status"] == "queued"
    assert engine.job_counts()["cancelled"] == 1


def test_restart_continues_log_numbering_of_a_running_job(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig())
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    for text in ("one", "two"):
        engine.worker_message(b"w", p.WorkerMessage(p.LOG, [
            {"job_id": job_id, "attempt": job["attempt"], "stream": "stdout", "data": text}]))
    engine.flush()
    restarted = Engine(Store(tmp_path), clock, EngineConfig())  # the broker crashed mid-job
    assert restarted.lookup(job_id)["status"] == "queued"
    ready(restarted, b"w2", "w2")
    clock.t += 6.1  # past the hold for its old worker to come back with it
    restarted.worker_message(b"w2", p.WorkerMessage(p.HEARTBEAT, []))
    restarted.tick()
    restarted.dispatch()
    [again] = sent_jobs(restarted)[b"w2"]
    restarted.worker_message(b"w2", p.WorkerMessage(p.LOG, [
        {"job_id": job_id, "attempt": again["attempt"], "stream": "stdout", "data": "three"}]))
    restarted.flush()
    lines = restarted.store.logs(job_id, 0, 10)
    assert [(line["line"], line["data"]) for line in lines] == [(1, "one"), (2, "two"),
                                                                (3, "three")]


# ------------------------------------------------------------ registration (issues #10, #9)


def test_ready_is_acknowledged_at_once(engine: Engine) -> None:
    ready(engine, b"w", "w")
    assert b"w" in sent(engine, p.HEARTBEAT)  # not one interval later: the worker's clock runs


def test_job_whose_send_failed_goes_back_with_its_attempt_undone(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"gone", "w")
    engine.dispatch()
    jobs, _ = engine.outbox.take_workers()
    engine.worker_unreachable(b"gone", jobs[b"gone"][1])
    job = engine.lookup(job_id)
    assert (job["status"], job["attempts"], engine.active[job_id].lost_count) == ("queued", 0, 0)
    assert engine.workers.get(b"gone") is None
    ready(engine, b"w2", "w2")
    engine.dispatch()
    assert [j["attempt"] for j in sent_jobs(engine)[b"w2"]] == [1]


def test_same_name_replaces_its_old_registration(engine: Engine) -> None:
    ready(engine, b"old", "w")
    ready(engine, b"new", "w")  # reconnected under a new identity
    assert len(engine.workers) == 1 and engine.workers.by_name("w").identity == b"new"
    engine.submit([{"task": "t"}])
    engine.dispatch()
    assert list(sent_jobs(engine)) == [b"new"]


def test_second_ready_keeps_the_jobs_it_reports(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    engine.events.take_pending()
    ready(engine, b"w", "w", running=[{"job_id": job_id, "attempt": 1}])
    engine.dispatch()
    assert sent_jobs(engine).get(b"w", []) == []
    assert "job.retrying" not in event_types(engine)
    assert set(engine.workers.get(b"w").running) == {job_id}
    result(engine, b"w", job, value=1)
    assert engine.lookup(job_id)["status"] == "succeeded"


def test_unknown_worker_is_told_to_register_once_per_episode(engine: Engine) -> None:
    for _ in range(3):
        heartbeat(engine, b"stranger")
    assert len(sent(engine, p.DISCONNECT)) == 1
    heartbeat(engine, b"stranger")
    assert sent(engine, p.DISCONNECT) == {}
    ready(engine, b"stranger", "s")
    engine.clock.t += 3.5
    engine.tick()  # lost
    engine.outbox.take()
    heartbeat(engine, b"stranger")
    assert b"stranger" in sent(engine, p.DISCONNECT)  # a new episode


def _lose(engine: Engine, identity: bytes, name: str) -> tuple[str, dict]:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, identity, name)
    engine.dispatch()
    [job] = sent_jobs(engine)[identity]
    engine.clock.t += 3.5
    engine.tick()
    assert engine.lookup(job_id)["status"] == "queued"
    return job_id, job


def test_stalled_worker_takes_back_its_requeued_job(engine: Engine) -> None:
    job_id, job = _lose(engine, b"w", "w")
    heartbeat(engine, b"w")  # SIGCONT: the broker no longer knows it
    assert b"w" in sent(engine, p.DISCONNECT)
    ready(engine, b"w", "w", running=[{"job_id": job_id, "attempt": 1}])
    ready(engine, b"w2", "w2")
    engine.dispatch()
    assert sent_jobs(engine) == {}
    live = engine.active[job_id]
    assert (live.status, live.attempts, live.lost_count, live.worker) == ("running", 1, 0, "w")
    result(engine, b"w", job, value="once")
    assert engine.lookup(job_id)["result"] == "once"


def test_result_sent_after_the_ready_is_taken_back_too(engine: Engine) -> None:
    job_id, job = _lose(engine, b"w", "w")
    ready(engine, b"w-new", "w")  # it ended while disconnected: not in `running`
    result(engine, b"w-new", job, value="done")
    found = engine.lookup(job_id)
    assert (found["status"], found["attempts"]) == ("succeeded", 1)


def test_returning_worker_cancels_a_job_started_elsewhere(engine: Engine) -> None:
    job_id, first = _lose(engine, b"w", "w")
    ready(engine, b"w2", "w2")
    engine.dispatch()
    [second] = sent_jobs(engine)[b"w2"]
    ready(engine, b"w", "w", running=[{"job_id": job_id, "attempt": 1}])
    assert sent(engine, p.CANCEL_JOB)[b"w"] == [{"job_id": job_id}]
    result(engine, b"w", first, value="late")
    result(engine, b"w2", second, value="w2")
    assert engine.lookup(job_id)["result"] == "w2"
    assert not engine.workers.by_name("w").running


def test_returning_worker_cancels_a_job_that_ended_meanwhile(engine: Engine) -> None:
    job_id, _ = _lose(engine, b"w", "w")
    engine.cancel(job_id)
    ready(engine, b"w", "w", running=[{"job_id": job_id, "attempt": 1}])
    assert sent(engine, p.CANCEL_JOB)[b"w"] == [{"job_id": job_id}]
    assert engine.lookup(job_id)["status"] == "cancelled"


def test_dispatch_stores_the_attempt(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    engine.flush()
    ready(engine, b"w", "w")
    engine.dispatch()
    engine.flush()
    row = engine.store.get(job_id)
    assert (row["status"], row["attempts"], row["worker"]) == ("running", 1, "w")


def test_restarted_broker_leaves_a_running_job_to_its_worker(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig())
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    engine.flush()
    restarted = Engine(Store(tmp_path), clock, EngineConfig())  # the broker crashed mid-job
    ready(restarted, b"other", "other")  # registers first: must not get it
    restarted.tick()
    restarted.dispatch()
    assert sent_jobs(restarted) == {}
    ready(restarted, b"w-again", "w", running=[{"job_id": job_id, "attempt": 1}])
    restarted.dispatch()
    assert sent_jobs(restarted) == {}
    result(restarted, b"w-again", job, value=7)
    restarted.flush()
    row = restarted.store.get(job_id)
    assert (row["status"], row["attempts"], row["result"]) == ("succeeded", 1, 7)


def test_job_of_a_broker_crash_with_no_worker_back_runs_after_the_hold(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig())
    engine.submit([{"task": "t"}])
    engine.flush()  # stored as queued; the dispatch below is a later turn
    ready(engine, b"w", "w")
    engine.dispatch()
    engine.flush()
    restarted = Engine(Store(tmp_path), clock, EngineConfig())
    ready(restarted, b"other", "other")
    clock.t += 6.1
    heartbeat(restarted, b"other")
    restarted.tick()
    restarted.dispatch()
    assert [j["attempt"] for j in sent_jobs(restarted)[b"other"]] == [2]  # it ran twice: says so


# ------------------------------------------------------------ capabilities (issue #9)


def test_jobs_go_only_to_workers_that_can_run_them(engine: Engine) -> None:
    x, y, run, fn = engine.submit([
        {"task": "x"}, {"task": "y"},
        {"kind": "exec", "spec": {"entry": "main.py", "code_files": {"main.py": b""}}},
        {"kind": "function", "function": b"pickled"},
    ])
    ready(engine, b"a", "a", capacity=5, tasks=["x"])
    ready(engine, b"b", "b", capacity=5, tasks=["y"], flags=["pickle"])
    engine.dispatch()
    jobs = sent_jobs(engine)
    assert [j["id"] for j in jobs[b"a"]] == [x]
    assert sorted(j["id"] for j in jobs[b"b"]) == sorted([y, fn])
    assert engine.lookup(run)["status"] == "queued"
    assert engine.queue_depths()["default"]["unserved"] == 1
    ready(engine, b"c", "c", tasks=[], flags=["exec"])
    assert engine.queue_depths()["default"]["unserved"] == 0
    engine.dispatch()
    assert [j["id"] for j in sent_jobs(engine)[b"c"]] == [run]


def test_unserved_counts_queues_nobody_serves_and_unknown_tasks(engine: Engine) -> None:
    engine.submit([{"task": "nope"}, {"task": "x", "queue": "nowhere"}, {"task": "x"}])
    ready(engine, b"a", "a", capacity=0, tasks=["x"])
    depths = engine.queue_depths()
    assert (depths["default"]["unserved"], depths["nowhere"]["unserved"]) == (1, 1)


def test_a_queued_job_no_live_worker_can_run_says_it_is_unserved(engine: Engine) -> None:
    nope, elsewhere, served, run = engine.submit([
        {"task": "nope"}, {"task": "x", "queue": "nowhere"}, {"task": "x", "run_at": 1e10},
        {"kind": "exec", "spec": {"entry": "main.py", "code_files": {"main.py": b""}}},
    ])
    ready(engine, b"a", "a", capacity=0, tasks=["x"])  # full: a busy worker still serves x
    views = engine.lookup_many([nope, elsewhere, served, run])
    assert {k: v.get("unserved") for k, v in views.items()} == \
        {nope: True, elsewhere: True, served: None, run: True}  # `served` is scheduled
    listed = engine.overlay([engine.store.get(nope) or {"id": nope}])
    assert listed[0]["unserved"] is True
    ready(engine, b"b", "b", capacity=1, tasks=["nope"], flags=["exec"])
    assert "unserved" not in engine.lookup(nope) and "unserved" not in engine.lookup(run)
    engine.workers.remove(b"b")  # its worker is gone: the job says so again
    assert engine.lookup(nope)["unserved"] is True


def test_result_sent_before_the_ready_is_applied_after_it(engine: Engine) -> None:
    job_id, job = _lose(engine, b"w", "w")
    result(engine, b"w", job, value="ended while unknown")  # draws the DISCONNECT
    assert b"w" in sent(engine, p.DISCONNECT)
    ready(engine, b"w", "w")
    engine.dispatch()
    assert sent_jobs(engine) == {}
    found = engine.lookup(job_id)
    assert (found["status"], found["attempts"], found["result"]) == (
        "succeeded", 1, "ended while unknown")
    assert engine._held_bytes == 0


def test_the_broker_decides_every_attempts_time_limit(tmp_path: Path) -> None:
    engine = Engine(Store(tmp_path), FakeClock(), EngineConfig(default_timeout_s=7.0))
    plain, own, program = engine.submit([
        {"task": "t"}, {"task": "t", "timeout_s": 2.0},
        {"kind": "exec", "spec": {"entry": "main.py", "timeout_s": 3.0}},  # as REST sends it
    ])
    assert engine.lookup(program)["timeout_s"] == 8.0  # the program's limit, backed up
    engine.worker_message(b"w", p.WorkerMessage(p.READY, [{
        "name": "w", "queues": ["default"], "capacity": 3, "flags": ["exec"]}]))
    engine.dispatch()
    sent = {job["id"]: job["timeout_s"] for job in sent_jobs(engine)[b"w"]}
    assert sent == {plain: 7.0, own: 2.0, program: 8.0}


def test_events_carry_the_engines_clock(engine: Engine) -> None:
    engine.submit([{"task": "t"}])
    [(_, body)] = engine.events.take_pending()
    assert p.unpack(body)["ts"] == engine.clock.wall()


# ------------------------------------------------------------ queue controls


def test_paused_queue_takes_jobs_but_starts_none_until_resumed(engine: Engine) -> None:
    engine.configure_queue("default", paused=True)
    ids = engine.submit([{"task": "t"} for _ in range(3)])
    ready(engine, b"w1", "w1", capacity=3)
    engine.dispatch()
    assert sent_jobs(engine) == {}
    assert engine.queue_depths()["default"]["queued"] == 3
    assert engine.queue_depths()["default"]["paused"] is True
    settings = engine.configure_queue("default", paused=False)
    assert settings == {"name": "default", "paused": False, "rate_limit": None}
    engine.dispatch()
    assert [j["id"] for j in sent_jobs(engine)[b"w1"]] == ids


def test_pausing_one_queue_leaves_the_others_running(engine: Engine) -> None:
    engine.configure_queue("slow", paused=True)
    engine.submit([{"task": "t", "queue": "slow"}])
    fast = engine.submit([{"task": "t", "queue": "fast"}])
    ready(engine, b"w1", "w1", queues=("slow", "fast"), capacity=2)
    engine.dispatch()
    assert [j["id"] for j in sent_jobs(engine)[b"w1"]] == fast


def test_token_bucket_starts_a_burst_then_rate_per_second(engine: Engine) -> None:
    engine.configure_queue("default", rate_limit=2)
    engine.submit([{"task": "t"} for _ in range(6)])
    ready(engine, b"w1", "w1", capacity=10)
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 2  # the burst: max(1, rate)
    engine.dispatch()
    assert sent_jobs(engine) == {}
    delay = engine.tick()
    assert delay == pytest.approx(0.5)  # the refill of one token is the next deadline
    engine.clock.t += 0.5
    engine.tick()
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 1
    engine.clock.t += 1.0
    engine.tick()
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 2


def test_a_fractional_rate_waits_whole_seconds(engine: Engine) -> None:
    engine.configure_queue("default", rate_limit=0.5)
    engine.submit([{"task": "t"} for _ in range(2)])
    ready(engine, b"w1", "w1", capacity=2)
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 1  # burst is at least one
    assert engine.tick() == pytest.approx(0.5)  # the heartbeat's half interval comes first
    engine.clock.t += 1.9
    engine.tick()
    engine.dispatch()
    assert sent_jobs(engine) == {}
    engine.clock.t += 0.1
    engine.tick()
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 1


def test_removing_the_limit_restores_full_speed(engine: Engine) -> None:
    engine.configure_queue("default", rate_limit=1)
    engine.submit([{"task": "t"} for _ in range(5)])
    ready(engine, b"w1", "w1", capacity=5)
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 1
    assert engine.configure_queue("default", rate_limit=0)["rate_limit"] is None
    engine.dispatch()
    assert len(sent_jobs(engine)[b"w1"]) == 4
    assert engine.tick() == pytest.approx(0.5)  # no refill deadline left


def test_an_idle_limited_queue_does_not_spin_the_loop(engine: Engine) -> None:
    engine.configure_queue("default", rate_limit=1)
    engine.submit([{"task": "t"}])
    ready(engine, b"w1", "w1")
    engine.dispatch()
    sent_jobs(engine)
    assert engine.tick() == pytest.approx(0.5)
    engine.clock.t += 1.0
    assert engine.tick() == pytest.approx(0.5)  # refilled: no deadline of its own


def test_a_paused_limited_queue_sets_no_refill_deadline(engine: Engine) -> None:
    engine.configure_queue("default", rate_limit=4, paused=True)
    engine.submit([{"task": "t"}])
    assert engine.tick() == pytest.approx(0.5)


def test_queue_settings_survive_a_restart(tmp_path: Path) -> None:
    engine = Engine(Store(tmp_path), FakeClock(), EngineConfig())
    engine.configure_queue("q", paused=True, rate_limit=3)
    engine.flush()
    engine.configure_queue("q", rate_limit=5)
    engine.flush()
    engine.store.close()
    again = Engine(Store(tmp_path), FakeClock(), EngineConfig())
    assert again.queue_depths()["q"]["paused"] is True
    assert again.queue_depths()["q"]["rate_limit"] == 5
    assert "q" in again.throttle.closed


def test_queue_updated_event_carries_the_settings(engine: Engine) -> None:
    engine.events.take_pending()
    engine.configure_queue("q", rate_limit=2.5)
    events = [p.unpack(body) for _, body in engine.events.take_pending()]
    assert [e["type"] for e in events] == ["queue.updated"]
    assert {k: events[0][k] for k in ("queue", "paused", "rate_limit")} == {
        "queue": "q", "paused": False, "rate_limit": 2.5}


def test_bad_rate_limits_are_refused(engine: Engine) -> None:
    for rate in (-1, float("nan"), float("inf")):
        with pytest.raises(CommandError) as caught:
            engine.configure_queue("q", rate_limit=rate)
        assert caught.value.code == "bad_request"
    assert "q" not in engine.throttle.settings and "q" not in engine.queue_depths()
    engine.events.take_pending()
    assert engine.configure_queue("q") == {"name": "q", "paused": False, "rate_limit": None}
    assert event_types(engine) == [] and "q" not in engine.queue_depths()


def test_purge_cancels_the_waiting_jobs_not_the_running_one(engine: Engine) -> None:
    running = engine.submit([{"task": "t"}])[0]
    ready(engine, b"w1", "w1")
    engine.dispatch()
    waiting = engine.submit([{"task": "t"} for _ in range(3)])
    scheduled = engine.submit([{"task": "t", "run_at": engine.clock.wall() + 60}])
    other = engine.submit([{"task": "t", "queue": "other"}])
    engine.events.take_pending()
    assert engine.purge("default") == 4
    for job_id in [*waiting, *scheduled]:
        assert engine.lookup(job_id)["status"] == "cancelled"
    assert engine.lookup(running)["status"] == "running"
    assert engine.lookup(other[0])["status"] == "queued"
    assert event_types(engine) == ["job.cancelled"] * 4
    engine.clock.t += 61
    engine.tick()
    assert engine.lookup(scheduled[0])["status"] == "cancelled"


def test_purge_cancels_deferred_jobs_and_their_dependents_elsewhere(engine: Engine) -> None:
    parent = engine.submit([{"task": "t", "queue": "slow"}])[0]  # no worker: stays queued
    child = engine.submit([{"task": "t", "depends_on": [parent]}])[0]
    grandchild = engine.submit([{"task": "t", "depends_on": [child]}])[0]
    elsewhere = engine.submit([{"task": "t", "queue": "other", "depends_on": [child]}])[0]
    assert engine.lookup(child)["status"] == "deferred"
    engine.events.take_pending()
    assert engine.purge("default") == 2  # child and grandchild, each cancelled once
    for job_id in (child, grandchild, elsewhere):
        assert engine.lookup(job_id)["status"] == "cancelled"
    assert engine.lookup(elsewhere)["error"]["type"] == "DependencyFailed"
    assert engine.lookup(parent)["status"] == "queued"
    assert event_types(engine) == ["job.cancelled"] * 3


def test_a_lost_worker_with_buffered_jobs_is_never_offered_work_again(engine: Engine) -> None:
    """Handing back a lost worker's buffer returns its credit: it must not make the worker
    free again (dispatch would then look up a worker that is gone)."""
    ids = engine.submit([{"task": "t"} for _ in range(3)])
    ready(engine, b"w", "w", prefetch=4)
    engine.dispatch()
    engine.outbox.take()
    engine.clock.t += 3.5
    engine.tick()  # lost: its three buffered jobs go back, their attempts uncounted
    assert engine.workers.free_in_lru_order() == []
    assert [engine.lookup(i)["attempts"] for i in ids] == [0, 0, 0]
    engine.dispatch()  # no worker left to look up
    ready(engine, b"w2", "w2", prefetch=4)
    engine.dispatch()
    assert sorted(j["id"] for j in sent_jobs(engine)[b"w2"]) == sorted(ids)


@pytest.mark.parametrize("claim", [{"name": "w\x00"}, {"name": "\udc80"}, {"group": "g\x00"},
                                   {"queues": ["q\x00"]}, {"tasks": ["t" * 600]},
                                   {"capacity": "many"}, {"prefetch": True}])
def test_a_ready_claiming_what_a_store_cannot_hold_is_refused(engine: Engine, claim) -> None:
    before = engine.stats["malformed"]
    body = {"name": "w", "queues": ["default"], "capacity": 1, **claim}
    engine.worker_message(b"w", p.WorkerMessage(p.READY, [body]))
    assert engine.workers.get(b"w") is None and engine.stats["malformed"] == before + 1


def test_a_ready_is_believed_within_bounds(engine: Engine) -> None:
    ready(engine, b"w", "w", capacity=10**9, prefetch=10**9, heartbeat_interval_s=1e300)
    worker = engine.workers.get(b"w")
    assert (worker.capacity, worker.prefetch) == (100_000, 10_000)
    assert worker.expiry_s == 10 * 1.0 * 3  # at most 10 x the broker's interval, x liveness


def test_a_log_line_with_nul_or_a_lone_surrogate_is_stored_readable(engine: Engine) -> None:
    [job_id] = engine.submit([{"task": "t"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    for line in ("a\x00b", "c\udc80d"):
        engine.worker_message(b"w", p.WorkerMessage(p.LOG, [{
            "job_id": job_id, "attempt": job["attempt"], "stream": "stdout", "data": line}]))
    engine.flush()
    assert [row["data"] for row in engine.store.logs(job_id, 0, 10)] == ["a\ufffdb",
                                                                           "c\ufffdd"]


def test_answered_waits_do_not_pile_up_behind_a_long_one(engine: Engine) -> None:
    """One WAIT of an hour, then thousands answered at once: the answered ones leave the
    deadline heap long before the hour is up (with the jobs they answered)."""
    from zjobs.broker.core.waits import WaitGroup

    [slow] = engine.submit([{"task": "t", "queue": "other"}])  # stays pending
    engine.waits.add(WaitGroup(b"c", b"long", [slow], engine.clock.mono() + 3600, True), {})
    ids = engine.submit([{"task": "t"} for _ in range(3000)])
    for i, job_id in enumerate(ids):
        engine.wait_for(b"c", str(i).encode(), [job_id], 60.0, single=True, finished={})
    engine.purge("default")  # ends all of them (cancelled): every short wait is answered
    assert len(engine.waits._deadlines) < 2000


def test_a_restarted_broker_waits_for_its_workers_before_starting_jobs(tmp_path: Path) -> None:
    """A job sent to a worker's buffer, started there, its STARTED never committed (the broker
    died): the restarted broker starts nothing for RESTART_GRACE heartbeat intervals, so the
    worker that runs it registers first and keeps it, and no other worker runs it too."""
    clock = FakeClock()
    engine = Engine(Store(tmp_path), clock, EngineConfig(heartbeat_interval_s=1.0))
    first, second = engine.submit([{"task": "t"}, {"task": "t"}])
    engine.flush()
    engine.store.close()  # killed: what it sent after this commit, it never wrote
    again = Engine(Store(tmp_path), clock, EngineConfig(heartbeat_interval_s=1.0))
    assert again.tick() <= RESTART_GRACE * 1.0  # the loop wakes when the grace ends
    ready(again, b"other", "other", capacity=2, prefetch=4)  # registers at once
    again.dispatch()
    assert sent_jobs(again) == {}
    clock.t += 1.0  # the worker's next heartbeat drew DISCONNECT: it registers again
    ready(again, b"runs", "runs", capacity=1, prefetch=4,
          running=[{"job_id": first, "attempt": 1}])
    assert again.lookup(first)["status"] == "running" and again.lookup(first)["attempts"] == 1
    clock.t += RESTART_GRACE
    heartbeat(again, b"other")
    again.tick()
    again.dispatch()
    assert [job["id"] for job in sent_jobs(again)[b"other"]] == [second]


def test_a_standby_taking_over_waits_a_liveness_window_longer(tmp_path: Path) -> None:
    """Its workers were on the old primary's endpoint: each finds it silent (a liveness
    window) before it moves on, so a takeover's grace is liveness + RESTART_GRACE intervals."""
    clock = FakeClock()
    config = EngineConfig(heartbeat_interval_s=1.0, heartbeat_liveness=3)
    engine = Engine(Store(tmp_path), clock, config)
    engine.submit([{"task": "t"}])
    engine.flush()
    engine.store.close()
    grace_s = takeover_grace_s(1.0, 3)
    assert grace_s == 3 + RESTART_GRACE
    again = Engine(Store(tmp_path), clock,
                   EngineConfig(heartbeat_interval_s=1.0, restart_grace_s=grace_s))
    ready(again, b"w", "w", capacity=1, prefetch=4)
    clock.t += RESTART_GRACE + 1  # past a plain restart's grace: still within this one
    heartbeat(again, b"w")
    again.tick()
    again.dispatch()
    assert sent_jobs(again) == {}
    clock.t += 2
    heartbeat(again, b"w")
    again.tick()
    again.dispatch()
    assert len(sent_jobs(again)[b"w"]) == 1


def test_a_broker_with_nothing_to_run_starts_jobs_at_once(tmp_path: Path) -> None:
    Engine(Store(tmp_path), FakeClock(), EngineConfig()).store.close()
    again = Engine(Store(tmp_path), FakeClock(), EngineConfig(heartbeat_interval_s=1.0))
    ready(again, b"w", "w")
    [job_id] = again.submit([{"task": "t"}])
    again.dispatch()
    assert [job["id"] for job in sent_jobs(again)[b"w"]] == [job_id]
