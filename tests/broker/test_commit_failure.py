"""A commit that fails costs the turn's offending submits an ERR, never the engine.

The bounds in `build_job` keep bad values out; these tests put one past them
(as a future bug could) or make the store fail, and check what stays: every
acknowledged job is stored, nothing unacknowledged is left in memory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.broker.test_engine import FakeClock, ready, sent_jobs
from zjobs.broker.core import commands
from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p

INFO = commands.ServerInfo("tcp://x", "0", 0.0)


class FlakyStore(Store):
    """A real store whose next `failures` commits raise as a full disk would."""

    failures = 0

    def commit(self, *args, **kwargs) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        super().commit(*args, **kwargs)


def _engine(tmp_path: Path) -> Engine:
    return Engine(FlakyStore(tmp_path), FakeClock(), EngineConfig())


def _submit(engine: Engine, rid: bytes, body: dict) -> None:
    request = p.decode_request(p.encode_request(p.SUBMIT, rid, body))
    commands.handle(engine, b"client", request, INFO)


def _replies(engine: Engine) -> dict[bytes, p.ClientReply]:
    replies, _ = engine.outbox.take()
    decoded = (p.decode_reply(frames) for _, frames in replies)
    return {reply.request_id: reply for reply in decoded}


def test_a_row_the_store_refuses_costs_its_batch_an_err_and_nothing_else(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _submit(engine, b"good", {"task": "t"})
    _submit(engine, b"bad", {"jobs": [{"task": "t", "id": "mate"}, {"task": "t", "id": "poison"}]})
    _submit(engine, b"same-key", {"task": "t", "id": "other", "idempotency_key": "k"})
    engine.active["poison"].priority = 2**70  # past build_job's bounds, as a bug could be
    ready(engine, b"w", "w", capacity=10)
    engine.dispatch()  # some of them are already sent to the worker in this turn
    engine.flush()
    replies = _replies(engine)
    assert replies[b"good"].ok and replies[b"same-key"].ok
    assert (replies[b"bad"].ok, replies[b"bad"].body["code"]) == (False, "bad_request")
    assert "poison" in replies[b"bad"].body["message"]
    for job_id in ("mate", "poison"):  # the whole batch is refused: all or nothing
        assert engine.lookup(job_id) is None and job_id not in engine.active
    good_id = replies[b"good"].body["id"]
    assert engine.store.get(good_id) is not None and engine.store.get("other") is not None
    assert sum(engine.job_counts().values()) == 2
    assert set(engine.workers.by_name("w").running) == {good_id, "other"}


def test_a_store_that_cannot_write_refuses_new_jobs_and_keeps_other_changes(
        tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    [running] = engine.submit([{"task": "t"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    engine.flush()
    [job] = sent_jobs(engine)[b"w"]
    engine.store.failures = 2  # this turn's commit and its retry fail
    engine.worker_message(b"w", p.WorkerMessage(p.RESULT, [
        {"job_id": running, "attempt": job["attempt"], "ok": True, "result": 7}]))
    _submit(engine, b"new", {"task": "t", "id": "new"})
    engine.flush()
    reply = _replies(engine)[b"new"]
    assert (reply.ok, reply.body["code"]) == (False, "unavailable")
    assert engine.lookup("new") is None
    _submit(engine, b"later", {"task": "t", "id": "later"})
    engine.flush()  # the store is back: the kept result is committed with the new job
    assert _replies(engine)[b"later"].ok
    assert engine.store.get(running)["result"] == 7
    assert engine.store.get("later") is not None and engine.store.get("new") is None


def test_events_say_a_refused_job_is_gone(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _submit(engine, b"bad", {"task": "t", "id": "poison"})
    engine.active["poison"].max_retries = 2**64
    engine.flush()
    events = [p.unpack(body) for _, body in engine.events.take_pending()]
    assert [(e["type"], e["status"]) for e in events] == [
        ("job.submitted", "queued"), ("job.cancelled", "cancelled")]
    assert events[1]["error"]["type"] == "NotStored"
    assert Store(tmp_path).meta()["last_seq"] == events[-1]["seq"]


def test_a_refused_job_already_sent_to_its_worker_is_cancelled_there(tmp_path: Path) -> None:
    """The server sends a turn's JOBs before its commit; a job the commit then refuses
    must not stay running at the worker."""
    engine = _engine(tmp_path)
    _submit(engine, b"bad", {"jobs": [{"task": "t", "id": "mate"}, {"task": "t", "id": "poison"}]})
    engine.active["poison"].priority = 2**70
    ready(engine, b"w", "w", capacity=10)
    engine.dispatch()
    jobs, _ = engine.outbox.take_workers()  # what the server sends before the commit
    assert sorted(job[0] for job in jobs[b"w"][1]) == ["mate", "poison"]
    engine.flush()
    cancels = engine.outbox.take_workers()[1][b"w"][p.CANCEL_JOB]
    assert sorted(p.unpack(b)["job_id"] for b in cancels) == ["mate", "poison"]
    assert not engine.workers.by_name("w").running


class _FullDisk:
    """A connection whose writes fail as on a full disk, while `full` is set."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.full = False

    def _check(self, sql: str) -> None:
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args):  # noqa: ANN202 - sqlite3's own
        self._check(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args):  # noqa: ANN202
        self._check(sql)
        return self.db.executemany(sql, *args)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.db, name)


def test_a_store_that_cannot_write_drops_no_setting(tmp_path: Path) -> None:
    """Only a row the store refuses for its own values is dropped; when every write fails
    (a full disk), the queue settings and schedules stay buffered for the next commit."""
    engine = Engine(Store(tmp_path), FakeClock(), EngineConfig())
    engine.store.db = disk = _FullDisk(engine.store.db)
    disk.full = True
    commands.handle(engine, b"c", p.ClientRequest(p.QUEUE, b"q", {"name": "q", "paused": True}),
                    INFO)
    commands.handle(engine, b"c", p.ClientRequest(p.SCHEDULE, b"s", {
        "name": "s", "task": "t", "every_s": 60}), INFO)
    _submit(engine, b"job", {"task": "t"})
    engine.flush()
    replies = _replies(engine)
    assert (replies[b"job"].ok, replies[b"job"].body["code"]) == (False, "unavailable")
    disk.full = False
    engine.flush()
    assert engine.store.queue_settings() == {"q": (True, None)}
    assert [s.name for s in engine.store.load_schedules()] == ["s"]
