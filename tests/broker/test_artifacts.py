"""Chunked artifacts and oversized results in the engine and the store (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p

from .test_engine import FakeClock, ready, result, sent_jobs

MAX_MESSAGE = 64 * 1024


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(Store(tmp_path), FakeClock(), EngineConfig())


def _running(engine: Engine, **job: object) -> dict:
    engine.submit([{"task": "t", **job}])
    ready(engine, b"w", "w")
    engine.dispatch()
    return sent_jobs(engine)[b"w"][0]


def _send_chunks(engine: Engine, chunks: list[dict]) -> None:
    for chunk in chunks:
        engine.worker_message(b"w", p.WorkerMessage(p.ARTIFACT_CHUNK, [chunk]))
        engine.flush()


def _result_listing(engine: Engine, job: dict, artifacts: list[dict]) -> None:
    body = {"job_id": job["id"], "attempt": job["attempt"], "ok": True, "result": 1,
            "artifacts": [{"name": a["name"], "size": len(a["data"])} for a in artifacts]}
    engine.worker_message(b"w", p.WorkerMessage(p.RESULT, [body]))
    engine.flush()


def test_chunks_split_an_artifact_below_the_limit_and_join_back() -> None:
    data = bytes(range(256)) * 1000
    chunks = p.artifact_chunks("j", 1, {"name": "a.bin", "data": data}, MAX_MESSAGE)
    assert len(chunks) > 1 and [c["index"] for c in chunks] == list(range(len(chunks)))
    assert [c["last"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(p.pack(c)) <= p.max_body_bytes(MAX_MESSAGE) for c in chunks)
    assert b"".join(c["data"] for c in chunks) == data
    assert p.artifact_chunks("j", 1, {"name": "empty", "data": b""}, MAX_MESSAGE)[0]["last"]


def test_batches_stay_under_the_limit_in_order() -> None:
    bodies = [bytes([i]) * 20_000 for i in range(10)]
    batches = p.split_batches(bodies, MAX_MESSAGE)
    assert [b for batch in batches for b in batch] == bodies
    assert all(sum(map(len, batch)) <= p.max_body_bytes(MAX_MESSAGE) for batch in batches)


def test_peek_reads_the_ids_of_an_oversized_result() -> None:
    frames = p.encode_worker(p.RESULT, {"job_id": "j1", "attempt": 2, "ok": True,
                                        "result": b"x" * 100_000})
    msg = p.peek_worker(frames)
    assert msg.command == p.RESULT and msg.bodies == [{"job_id": "j1", "attempt": 2}]


def test_chunked_artifact_completes_the_job_and_reads_back_whole(engine: Engine) -> None:
    job = _running(engine)
    artifact = {"name": "out.bin", "data": bytes(range(256)) * 2000,
                "content_type": "application/x-test"}
    _send_chunks(engine, p.artifact_chunks(job["id"], job["attempt"], artifact, MAX_MESSAGE))
    assert engine.lookup(job["id"])["status"] == "running"
    _result_listing(engine, job, [artifact])
    assert engine.lookup(job["id"])["status"] == "succeeded"
    assert engine.store.artifacts(job["id"]) == [
        {"name": "out.bin", "content_type": "application/x-test", "size": len(artifact["data"])}]
    assert engine.store.artifact(job["id"], "out.bin") == ("application/x-test",
                                                            artifact["data"])
    assert len(engine.transfers) == 0


def test_result_before_all_chunks_fails_the_attempt(engine: Engine) -> None:
    job = _running(engine)
    artifact = {"name": "out.bin", "data": b"z" * 200_000}
    chunks = p.artifact_chunks(job["id"], job["attempt"], artifact, MAX_MESSAGE)
    _send_chunks(engine, chunks[:-1])
    _result_listing(engine, job, [artifact])
    found = engine.lookup(job["id"])
    assert found["status"] == "failed"
    assert found["error"]["type"] == "ArtifactsIncomplete"
    assert "out.bin" in found["error"]["message"]
    assert engine.store.artifacts(job["id"]) == []


def test_a_later_attempt_replaces_the_artifacts_of_an_earlier_one(engine: Engine) -> None:
    job = _running(engine, max_retries=1, retry_backoff_s=0)
    first = {"name": "a.txt", "data": b"first" * 10_000}
    _send_chunks(engine, p.artifact_chunks(job["id"], 1, first, MAX_MESSAGE))
    result(engine, b"w", job, ok=False, value={"type": "E", "message": "again"})
    engine.tick()
    engine.dispatch()
    [second_job] = sent_jobs(engine)[b"w"]
    second = {"name": "a.txt", "data": b"second"}
    _send_chunks(engine, p.artifact_chunks(job["id"], 2, second, MAX_MESSAGE))
    _result_listing(engine, second_job, [second])
    assert engine.store.artifact(job["id"], "a.txt")[1] == b"second"


def test_oversized_result_fails_the_job_at_once_despite_retries(engine: Engine) -> None:
    job = _running(engine, max_retries=3)
    msg = p.WorkerMessage(p.RESULT, [{"job_id": job["id"], "attempt": job["attempt"]}])
    engine.worker_oversized(b"w", msg, MAX_MESSAGE)
    found = engine.lookup(job["id"])
    assert found["status"] == "failed"
    assert found["error"]["type"] == "ResultTooLarge"
    assert str(MAX_MESSAGE) in found["error"]["message"]


def test_store_made_before_chunks_gains_the_attempt_column(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "zjobs.db")
    db.execute("CREATE TABLE artifacts (job_id TEXT NOT NULL, name TEXT NOT NULL, "
               "content_type TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL, "
               "PRIMARY KEY (job_id, name))")
    db.execute("INSERT INTO artifacts VALUES ('j', 'a', 'text/plain', 2, x'6869')")
    db.commit()
    db.close()
    store = Store(tmp_path)
    try:
        assert store.artifact("j", "a") == ("text/plain", b"hi")
    finally:
        store.close()
