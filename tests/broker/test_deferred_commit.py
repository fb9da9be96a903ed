"""`run()`'s round trip carries one commit: a turn whose only writes are jobs submitted with
`wait` leaves them for the next commit (DEFER_S at most), so a job that ends by then is
inserted as it ended. Anything else commits at once. Pure engine, real store."""

from __future__ import annotations

from pathlib import Path

from tests.broker.test_engine import FakeClock, ready, sent_jobs
from zjobs.broker.core import commands
from zjobs.broker.core.commits import DEFER_S
from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p

INFO = commands.ServerInfo("tcp://x", "0", 0.0)


class CountingStore(Store):
    commits = 0

    def commit(self, *args, **kwargs) -> None:
        self.commits += 1
        super().commit(*args, **kwargs)


def _engine(tmp_path: Path) -> Engine:
    engine = Engine(CountingStore(tmp_path), FakeClock(), EngineConfig())
    ready(engine, b"w", "w", prefetch=4)
    engine.flush(may_wait=True)
    engine.store.commits = 0
    return engine


def _request(engine: Engine, rid: bytes, body: dict) -> None:
    request = p.decode_request(p.encode_request(p.SUBMIT, rid, body))
    commands.handle(engine, b"client", request, INFO)


def _replies(engine: Engine) -> dict[bytes, p.ClientReply]:
    return {frames[2]: p.decode_reply(frames) for _, frames in engine.outbox.take_replies()}


def test_a_run_that_ends_before_the_next_commit_costs_one_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _request(engine, b"run", {"task": "t", "wait": 5, "fields": "outcome"})
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    engine.flush(may_wait=True)
    assert engine.store.commits == 0 and engine.store.get(job["id"]) is None
    assert 0 < engine.flush_due_s() <= DEFER_S
    engine.worker_message(b"w", p.WorkerMessage(p.RESULT, [
        {"job_id": job["id"], "attempt": 1, "ok": True, "result": 42}]))
    engine.flush(may_wait=True)
    assert engine.store.commits == 1 and engine.flush_due_s() is None
    assert engine.store.get(job["id"])["status"] == "succeeded"  # inserted as it ended
    reply = _replies(engine)[b"run"]
    assert reply.ok and (reply.body["status"], reply.body["result"]) == ("succeeded", 42)


def test_a_run_still_going_after_the_delay_is_committed_then(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _request(engine, b"run", {"task": "t", "wait": 5})
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    engine.flush(may_wait=True)
    engine.clock.t += DEFER_S
    engine.flush(may_wait=True)
    assert engine.store.commits == 1 and engine.store.get(job["id"])["status"] == "queued"
    assert _replies(engine) == {}  # held until the job ends, as WAIT is


def test_a_submit_without_wait_and_other_writes_commit_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _request(engine, b"run", {"task": "t", "wait": 5})
    _request(engine, b"plain", {"task": "t"})
    engine.flush(may_wait=True)
    assert engine.store.commits == 1 and _replies(engine)[b"plain"].ok
    _request(engine, b"run2", {"task": "t", "wait": 5})
    engine.submit([{"task": "t"}])  # a job of the broker's own (a schedule's firing)
    engine.flush(may_wait=True)
    assert engine.store.commits == 2
