"""The store's schema version: old data directories open and upgrade; newer ones are refused."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.cluster import Cluster
from zjobs.broker.core.submit import build_job
from zjobs.broker.core.workers import requirement
from zjobs.broker.stores.migrations import NEED_SQL, VERSION, version_of
from zjobs.broker.stores.store import Store
from zjobs.broker.wire.errors import StartError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store-unversioned.sql"
OLD_IDS = ["0190000000000000000000000001", "0190000000000000000000000002"]


def unversioned_data_dir(path: Path) -> Path:
    """A data directory as zjobs wrote it before the schema had a version."""
    path.mkdir(parents=True)
    db = sqlite3.connect(path / "zjobs.db")
    db.executescript(FIXTURE.read_text())
    db.close()
    return path


def rewrite_as(path: Path, version: int, *statements: str) -> None:
    """Give the store in `path` the layout of `version`: run `statements`, set the version."""
    db = sqlite3.connect(path / "zjobs.db")
    for statement in statements:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def indexes(path: Path) -> set[str]:
    db = sqlite3.connect(path / "zjobs.db")
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()


def test_an_unversioned_data_directory_upgrades_and_keeps_its_jobs(tmp_path: Path) -> None:
    data = unversioned_data_dir(tmp_path / "old")
    assert "jobs_queue" not in indexes(data) and "jobs_status" in indexes(data)
    store = Store(data)
    try:
        assert version_of(store.db) == VERSION > 1
        assert sorted(job.id for job in store.load_active()) == OLD_IDS
        assert store.get(OLD_IDS[1])["queue"] == "other"
        assert [job["id"] for job in store.list({"status": "queued"}, None, 10)] == \
            sorted(OLD_IDS, reverse=True)
    finally:
        store.close()
    assert {"jobs_queue", "jobs_task", "jobs_worker"} <= indexes(data)
    assert "jobs_status" not in indexes(data)  # version 9: a status is read via jobs_queue
    Store(data).close()  # opening an up-to-date store again changes nothing and does not fail


def test_a_new_data_directory_gets_the_current_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "new")
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    finally:
        store.close()


def test_a_store_newer_than_this_code_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "d").close()
    rewrite_as(tmp_path / "d", VERSION + 1)
    with pytest.raises(StartError, match="newer than this zjobs"):
        Store(tmp_path / "d")


def test_a_broker_on_an_old_data_directory_runs_its_jobs(bare_cluster: Cluster) -> None:
    unversioned_data_dir(bare_cluster.data_dir / "store")
    bare_cluster.start_broker()
    bare_cluster.start_worker("w1", "--tasks", "zjobs.worker.demo", "--queues", "default,other")
    jobs = bare_cluster.client().wait_many(OLD_IDS, timeout=30)
    assert [(j["status"], j["result"]) for j in jobs] == [("succeeded", 3), ("succeeded", "hi")]


def test_upgrading_to_version_7_indexes_the_dependents_of_jobs_stored_before(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "d")
    parent = build_job({"task": "noop", "id": "parent"}, time.time())
    child = build_job({"task": "noop", "id": "child", "depends_on": ["parent"]}, time.time())
    store.commit([parent, child], [], [], [], {})
    store.close()
    rewrite_as(tmp_path / "d", 6, "DROP TABLE job_dependencies")

    store = Store(tmp_path / "d")
    try:
        assert version_of(store.db) == VERSION
        assert [j["id"] for j in store.list({"depends_on": "parent"}, None, 10)] == ["child"]
        assert store.list({"depends_on": "child"}, None, 10) == []
    finally:
        store.close()


def test_upgrading_to_version_8_indexes_the_waiting_jobs_of_a_store_written_before(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "d")
    jobs = [build_job({"task": "noop", "priority": i % 2}, time.time()) for i in range(6)]
    for order, job in enumerate(jobs, 1):
        job.order = order
    store.commit(jobs, [], [], [], {})
    store.close()
    rewrite_as(tmp_path / "d", 7, "DROP INDEX jobs_ready", "DROP INDEX jobs_due")

    store = Store(tmp_path / "d")
    try:
        assert {"jobs_ready", "jobs_due"} <= indexes(tmp_path / "d")
        page = store.ready_page("default", "noop", None, 10, time.time())
        assert [job.id for job in page] == [job.id for job in jobs[1::2] + jobs[0::2]]
    finally:
        store.close()


@pytest.mark.parametrize("kind, task", [("task", "noop"), ("exec", None), ("exec", "label"),
                                        ("function", None), ("function", "label")])
def test_the_ready_index_keys_a_job_by_what_it_needs_from_a_worker(kind: str,
                                                                   task: str | None) -> None:
    """The index cannot call `requirement`: its SQL says the same, or no worker that can run
    a job would find it deep in its queue."""
    db = sqlite3.connect(":memory:")
    [need] = db.execute(f"SELECT {NEED_SQL} FROM (SELECT ? AS kind, ? AS task)",
                        (kind, task)).fetchone()
    assert need == requirement(kind, task)
