"""One store test suite, run on both stores: the embedded SQLite one and PostgreSQL.

Each test drives the store through the engine (as the broker does) or calls it
directly, and checks what comes back after a reopen: what a restarted broker
would see. The PostgreSQL server is private (initdb/pg_ctl on a free port).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.broker.test_engine import FakeClock, past_restart_grace, ready, result, sent_jobs
from tests.postgres import PostgresServer, started_postgres
from zjobs.broker.core.engine import Engine, EngineConfig
from zjobs.broker.core.submit import build_job
from zjobs.broker.stores.pgstore import Fenced, PostgresStore
from zjobs.broker.stores.rows import blob
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.jobs import STATES, Job, JobState
from zjobs.broker.wire.schema import plain_members

Opener = Callable[[], Store]
S = plain_members(JobState)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from started_postgres()


def _empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[Store] = []

    if request.param == "sqlite":
        def opener() -> Store:
            opened.append(Store(tmp_path / "data"))
            return opened[-1]
    else:
        server = request.getfixturevalue("postgres")
        _empty(server.url)

        def opener() -> Store:
            opened.append(PostgresStore(server.url))
            return opened[-1]
    yield opener
    for store in opened:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def _engine(store: Store) -> Engine:
    return Engine(store, FakeClock(), EngineConfig(heartbeat_interval_s=1.0))


def test_submitted_jobs_survive_a_reopen_in_order(open_store: Opener) -> None:
    engine = _engine(open_store())
    ids = engine.submit([{"task": "add", "args": [i, i], "queue": "q", "priority": i % 3}
                         for i in range(50)])
    engine.flush()
    engine.store.close()
    again = open_store()
    assert [j.id for j in again.load_active()] == ids
    assert again.counts() == {("q", "queued"): 50}
    assert again.get(ids[7])["priority"] == 1 and again.exists(ids[7])
    assert set(again.get_many(ids[:3])) == set(ids[:3])


def test_a_new_job_written_without_its_unset_fields_reads_back_whole(open_store: Opener
                                                                      ) -> None:
    """A new job whose later fields are all unset is inserted without them (the columns'
    defaults stand in); it must read back exactly as one written with every field."""
    store = open_store()
    engine = _engine(store)
    plain, keyed = engine.submit([{"task": "add", "args": [1, 2]},
                                  {"task": "add", "args": [1, 2], "idempotency_key": "k"}])
    engine.flush()
    loaded = {job.id: job for job in store.load_jobs([plain, keyed])}
    assert loaded[keyed].idempotency_key == "k"
    loaded[keyed].idempotency_key = None
    fields = [name for name in Job.__slots__ if name not in ("id", "order", "created_at")]
    assert [getattr(loaded[plain], f) for f in fields] == \
        [getattr(loaded[keyed], f) for f in fields]
    assert (loaded[plain].log_lines, loaded[plain].lost_count, loaded[plain].worker) == (0, 0, None)


def test_a_turn_of_many_rows_is_written_as_each_job_is(open_store: Opener) -> None:
    """A turn's rows go many to a statement (broker/stores/rows.py): inserts plain and full,
    then the updates of every one; each stored row must be its job as memory holds it."""
    engine = _engine(open_store())
    specs = [{"task": "t", "args": [i], "priority": i % 3} for i in range(150)]
    for i in range(0, 150, 7):
        specs[i]["idempotency_key"] = f"key-{i}"  # a full row among the lean ones
    ids = engine.submit(specs)
    engine.flush()
    ready(engine, b"w", "w", capacity=200)
    engine.dispatch()
    for index, job in enumerate(sent_jobs(engine)[b"w"]):
        result(engine, b"w", job, ok=index % 5 != 0, value=index)
    engine.flush()
    expected = {job_id: engine.lookup(job_id) for job_id in ids}
    engine.store.close()
    again = _engine(open_store())
    assert {job_id: again.store.get(job_id) for job_id in ids} == expected
    assert again.job_counts()["succeeded"] == 120 and again.job_counts()["failed"] == 30


def _slots(job: Job) -> dict[str, object]:
    """A job's fields as the store gives them back (blobs as bytes)."""
    values = {name: getattr(job, name) for name in Job.__slots__}
    return {name: bytes(v) if isinstance(v, bytearray) else v for name, v in values.items()}


def test_every_row_shape_reads_back_as_memory_holds_it(open_store: Opener) -> None:
    """broker/stores/rows.py leaves out the columns of unset fields and writes the usual
    NULLs of an update as literals; whatever shape a row takes, in one statement of many
    rows or alone, it reads back as its job, and a field set back to None is NULL again."""
    store = open_store()
    wall = 1_800_000_000.0
    jobs = [build_job({"task": "t", "args": [i], "timeout_s": 5 if i % 2 else None}, wall)
            for i in range(300)]
    for index, job in enumerate(jobs):
        job.order = index + 1
        if index % 3 == 0:  # ended before its insert (run()): some OPTIONAL fields set
            job.status, job.attempts, job.worker = S.SUCCEEDED, 1, f"w{index % 2}"
            job.started_at = job.finished_at = wall + index
            job.result = blob(p.pack(index))
        if index % 9 == 0:
            job.status, job.result, job.error = S.FAILED, None, blob(p.pack({"type": "E"}))
            job.progress, job.run_at = p.pack(0.5), wall + 60
    store.commit(jobs, [], [], [], {"order": len(jobs)})
    assert {j.id: _slots(j) for j in store.load_jobs(j.id for j in jobs)} == \
        {j.id: _slots(j) for j in jobs}
    for index, job in enumerate(jobs):  # a retry: the usual NULLs again, or a new error
        job.status, job.worker, job.attempts = S.QUEUED, None, job.attempts + 1
        job.result = job.started_at = job.finished_at = None
        job.error = job.progress = job.run_at = None
        if index % 4 == 0:
            job.error, job.run_at = blob(p.pack({"type": "Again"})), wall + 5
    store.commit([], jobs, [], [], {"order": len(jobs)})
    assert {j.id: _slots(j) for j in store.load_jobs(j.id for j in jobs)} == \
        {j.id: _slots(j) for j in jobs}


def test_depends_on_and_deferred_jobs_come_back_after_a_reopen(open_store: Opener) -> None:
    engine = _engine(open_store())
    parent, child = engine.submit([{"task": "t", "id": "p"},
                                   {"task": "t", "id": "c", "depends_on": ["p"]}])
    engine.flush()
    engine.store.close()
    again = _engine(open_store())
    assert again.store.statuses([parent, child, "none"]) == {"p": "queued", "c": "deferred"}
    assert again.lookup(child)["depends_on"] == [parent]
    assert again.job_counts()["deferred"] == 1
    assert [j["id"] for j in again.store.list({"depends_on": parent}, None, 10)] == [child]
    assert again.store.list({"depends_on": child}, None, 10) == []


def test_purge_drops_a_purged_jobs_place_among_the_dependents(open_store: Opener) -> None:
    engine = _engine(open_store())
    engine.submit([{"task": "t", "id": "p"}, {"task": "t", "id": "c", "depends_on": ["p"]}])
    engine.cancel("p")  # c is cancelled with it: both finished, both purged
    engine.flush()
    assert engine.store.purge_finished(before=engine.clock.wall() + 1)
    assert engine.store.list({"depends_on": "p"}, None, 10) == []
    count = engine.store.db.execute("SELECT COUNT(*) FROM job_dependencies").fetchone()[0]
    assert count == 0


def test_a_finished_job_keeps_its_result_logs_and_artifacts(open_store: Opener) -> None:
    engine = _engine(open_store())
    [job_id] = engine.submit([{"task": "t", "idempotency_key": "k-1"}])
    ready(engine, b"w", "w")
    engine.dispatch()
    [job] = sent_jobs(engine)[b"w"]
    engine.worker_message(b"w", p.WorkerMessage(p.LOG, [
        {"job_id": job_id, "attempt": 1, "stream": "stdout", "line": 1, "data": "hello\x00"}]))
    result(engine, b"w", job, value={"n": 2 ** 40})
    engine.flush()
    engine.store.close()
    store = open_store()
    stored = store.get(job_id)
    assert (stored["status"], stored["result"], stored["attempts"]) == \
        ("succeeded", {"n": 2 ** 40}, 1)
    assert [line["data"].rstrip("\x00\ufffd") for line in store.logs(job_id, 0, 10)] == ["hello"]
    assert store.find_idempotent("k-1") == job_id
    assert store.list({"status": "succeeded"}, None, 10)[0]["id"] == job_id
    assert store.load_active() == []


def test_list_filters_and_pages_newest_first(open_store: Opener) -> None:
    engine = _engine(open_store())
    ids = engine.submit([{"task": "a" if i % 2 else "b", "queue": "q"} for i in range(9)])
    engine.flush()
    store = engine.store
    first = store.list({"task": "a"}, None, 2)
    assert [j["id"] for j in first] == [ids[7], ids[5]]
    rest = store.list({"task": "a"}, first[-1]["id"], 10)
    assert [j["id"] for j in rest] == [ids[3], ids[1]]
    assert store.list({"queue": "nowhere"}, None, 10) == []


def test_a_status_is_read_across_queues_in_id_order(open_store: Opener) -> None:
    """No index leads with the status: a status filter reads each queue's jobs in it and
    merges them. Newest first for LIST, a page at a time; oldest first for `jobs_in`."""
    engine = _engine(open_store())
    [parent] = engine.submit([{"task": "t", "queue": "q0"}])
    ids = [parent] + engine.submit([{"task": "t", "queue": f"q{i % 3}",
                                     "depends_on": [parent] if i % 4 == 0 else None}
                                    for i in range(1, 24)])
    engine.flush()
    store = engine.store
    deferred = [job_id for i, job_id in enumerate(ids) if i % 4 == 0 and i > 0]
    queued = [job_id for job_id in ids if job_id not in deferred]
    assert store.queues() == ["q0", "q1", "q2"]
    pages, cursor = [], None
    while page := store.list({"status": "queued"}, cursor, 5):
        pages.append([job["id"] for job in page])
        cursor = page[-1]["id"]
    assert [len(page) for page in pages] == [5, 5, 5, 4]
    assert sum(pages, []) == queued[::-1]
    both = store.list({"status": ["deferred", "queued"]}, None, 100)
    assert [job["id"] for job in both] == ids[::-1]
    in_q1 = store.list({"status": ["queued"], "queue": "q1"}, None, 100)
    assert [job["id"] for job in in_q1] == [j for j in queued[::-1] if ids.index(j) % 3 == 1]
    assert [job.id for job in store.jobs_in("deferred")] == deferred
    assert [job.id for job in store.jobs_in("queued", 4)] == queued[:4]
    assert store.jobs_in("running") == []


def test_artifacts_in_chunks_read_back_whole(open_store: Opener) -> None:
    store = open_store()
    engine = _engine(store)
    [job_id] = engine.submit([{"task": "t"}])
    engine.flush()
    store.commit([], [], [], [(job_id, "a.bin", "application/octet-stream", 6, b"", 1)], {},
                 [(job_id, "a.bin", 1, 0, b"abc"), (job_id, "a.bin", 1, 1, b"def")])
    assert store.artifact(job_id, "a.bin") == ("application/octet-stream", b"abcdef")
    assert store.artifacts(job_id) == [{"name": "a.bin", "content_type":
                                        "application/octet-stream", "size": 6}]


def test_meta_and_purge(open_store: Opener) -> None:
    engine = _engine(open_store())
    ids = engine.submit([{"task": "t"} for _ in range(3)])
    for job_id in ids[:2]:
        engine.cancel(job_id)
    engine.flush()
    store = engine.store
    assert store.meta()["last_seq"] == engine.events.last_seq
    purged = store.purge_finished(before=engine.clock.wall() + 1)
    assert purged == {("default", "cancelled"): 2}
    assert [j.id for j in store.load_active()] == ids[2:]


def test_a_row_the_store_refuses_is_named_and_nothing_is_written(open_store: Opener) -> None:
    store = open_store()
    engine = _engine(store)
    engine.submit([{"task": "t", "id": "dup"}])
    engine.flush()
    from zjobs.broker.wire.jobs import Job

    twin = store.load_job("dup")
    fresh = Job(**{**{s: getattr(twin, s) for s in Job.__slots__}, "id": "fresh"})
    refused = store.refused_inserts([twin, fresh])
    assert [job.id for job, _ in refused] == ["dup"]
    assert not store.exists("fresh")


def test_a_fenced_postgres_store_does_not_commit(postgres: PostgresServer) -> None:
    _empty(postgres.url)
    store = PostgresStore(postgres.url)
    store.commit([], [], [], [], {"generation": 3})
    store.generation = 3
    engine = _engine(store)
    engine.submit([{"task": "t"}])
    engine.flush()                      # generation 3 is current: committed
    store.commit([], [], [], [], {"generation": 4})  # the way a new leader takes over
    ids = engine.submit([{"task": "t"}])
    with pytest.raises(Fenced):
        engine.flush()
    assert not PostgresStore(postgres.url).exists(ids[0])


def test_schedules_are_written_replaced_and_removed(open_store: Opener) -> None:
    from zjobs.broker.core.schedules import build_schedule

    store = open_store()
    beat = build_schedule("beat", {"task": "noop", "args": [1, "x"], "kwargs": {"k": None},
                                   "every_s": 1.5, "timeout_s": 2.0}, 1_700_000_000.0)
    beat.next_run_at = 1_700_000_001.5
    nightly = build_schedule("nightly", {"task": "noop", "cron": "0 3 * * *"}, 1_700_000_000.0)
    store.commit([], [], [], [], {}, schedules=([beat.row(), nightly.row()], []))
    beat.last_run_at = 1_700_000_001.5
    store.commit([], [], [], [], {}, schedules=([beat.row()], ["nightly"]))
    store.close()
    [again] = open_store().load_schedules()
    assert again.to_wire() == beat.to_wire()


def test_queue_settings_survive_a_reopen(open_store: Opener) -> None:
    engine = _engine(open_store())
    engine.configure_queue("q", paused=True, rate_limit=2.5)
    engine.configure_queue("r", rate_limit=4)
    engine.flush()
    engine.configure_queue("r", rate_limit=0)
    engine.flush()
    engine.store.close()
    store = open_store()
    assert store.queue_settings() == {"q": (True, 2.5), "r": (False, None)}
    depths = _engine(store).queue_depths()
    assert (depths["q"]["paused"], depths["q"]["rate_limit"]) == (True, 2.5)
    assert (depths["r"]["paused"], depths["r"]["rate_limit"]) == (False, None)


def _answer(engine: Engine, command: bytes, rid: bytes, body: dict) -> None:
    """A request as the broker's decoder hands it on (a lone surrogate cannot be packed: it
    reaches the broker only from inside, which must refuse it all the same)."""
    from zjobs.broker.core import commands

    request = p.ClientRequest(command, rid, body)
    commands.handle(engine, b"client", request, commands.ServerInfo("tcp://x", "0", 0.0))


def _replies(engine: Engine) -> dict[bytes, p.ClientReply]:
    decoded = (p.decode_reply(frames) for _, frames in engine.outbox.take_replies())
    return {reply.request_id: reply for reply in decoded}


def test_a_setting_the_store_refuses_costs_its_request_an_err_and_never_wedges(
        open_store: Opener) -> None:
    """A queue setting or a schedule whose row the store refuses (a value past the checks,
    as a bug could let through: a NUL on PostgreSQL, an integer past 64 bits on either) is
    answered ERR and dropped; the jobs of the same turn are stored, and the next commit
    goes through instead of failing on the same row for ever."""
    engine = _engine(open_store())
    _answer(engine, p.QUEUE, b"queue", {"name": "poisoned", "paused": True})
    _answer(engine, p.SCHEDULE, b"schedule", {"name": "poisoned", "task": "t", "every_s": 60})
    _answer(engine, p.QUEUE, b"fine", {"name": "fine", "rate_limit": 3})
    _answer(engine, p.SUBMIT, b"job", {"task": "t", "id": "kept"})
    engine.book.queue_rows["poisoned"] = ("poisoned", 2**70, None)  # noqa: SLF001 - the bug
    engine.schedules.get("poisoned").job.update(task="t\x00", priority=2**70)
    engine.flush()
    replies = _replies(engine)
    for rid in (b"queue", b"schedule"):
        assert (replies[rid].ok, replies[rid].body["code"]) == (False, "bad_request")
        assert "poisoned" in replies[rid].body["message"]
    assert replies[b"fine"].ok and replies[b"job"].ok
    assert engine.store.exists("kept")
    assert engine.store.queue_settings() == {"fine": (False, 3.0)}
    assert engine.store.load_schedules() == [] and engine.schedules.get("poisoned") is None
    _answer(engine, p.SUBMIT, b"next", {"task": "t", "id": "next"})
    engine.flush()  # the next turn commits: the store is not wedged
    assert _replies(engine)[b"next"].ok and engine.store.exists("next")


NUL, LONE = "q\x00x", "\udc80"
# Every way a command names something, with a NUL (PostgreSQL's text cannot hold it: before
# the rule, one of these wedged every commit or killed the broker) and a lone surrogate.
BAD_TEXT_REQUESTS = [
    (p.SUBMIT, {"task": "t", "queue": NUL}), (p.SUBMIT, {"task": NUL}),
    (p.SUBMIT, {"task": "t", "idempotency_key": NUL}), (p.SUBMIT, {"task": "t", "id": NUL}),
    (p.SUBMIT, {"task": "t", "depends_on": [NUL]}), (p.SUBMIT, {"task": "t", "queue": LONE}),
    (p.SUBMIT, {"jobs": [{"task": "t"}, {"task": "t", "idempotency_key": NUL}]}),
    (p.QUEUE, {"name": NUL, "paused": True}), (p.PURGE, {"name": NUL}),
    (p.SCHEDULE, {"name": NUL, "task": "t", "every_s": 60}),
    (p.SCHEDULE, {"name": "s", "task": NUL, "every_s": 60}),
    (p.SCHEDULE, {"name": "s", "task": "t", "queue": NUL, "every_s": 60}),
    (p.SCHEDULE, {"name": "s", "task": "t", "cron": "0 0 * * *\x00"}),
    (p.SCHEDULES, {"name": NUL}), (p.UNSCHEDULE, {"name": NUL}),
    (p.GET, {"id": NUL}), (p.CANCEL, {"id": NUL}), (p.RETRY, {"id": NUL}),
    (p.LOGS, {"id": NUL}), (p.ARTIFACT, {"id": NUL}), (p.WAIT, {"id": NUL}),
    (p.WAIT, {"ids": ["a", NUL], "each": True}), (p.WAIT, {"ids": ["a", LONE]}),
    (p.LIST, {"queue": NUL}), (p.LIST, {"task": NUL}), (p.LIST, {"worker": NUL}),
    (p.LIST, {"depends_on": NUL}), (p.LIST, {"cursor": NUL}), (p.LIST, {"cursor": "garbage"}),
    (p.RETRY_MANY, {"queue": NUL}), (p.RETRY_MANY, {"cursor": "garbage"}),
    (p.WORKERS, {"name": NUL}),
]


def test_text_no_store_can_hold_is_refused_and_the_store_goes_on(open_store: Opener) -> None:
    engine = _engine(open_store())
    [parent] = engine.submit([{"task": "t", "id": "parent"}])
    engine.flush()
    for index, (command, body) in enumerate(BAD_TEXT_REQUESTS):
        rid = str(index).encode()
        _answer(engine, command, rid, body)
        engine.flush()
        reply = _replies(engine)[rid]
        assert (reply.ok, reply.body["code"]) == (False, "bad_request"), (command, body)
        assert "\n" not in reply.body["message"]
    assert engine.store.counts() == {("default", "queued"): 1}
    assert engine.store.queue_settings() == {} and engine.store.load_schedules() == []
    _answer(engine, p.SUBMIT, b"after", {"task": "t", "depends_on": [parent]})
    _answer(engine, p.LIST, b"page", {"cursor": parent, "limit": 5})
    engine.flush()
    replies = _replies(engine)
    assert replies[b"after"].ok and engine.store.exists(replies[b"after"].body["id"])
    assert replies[b"page"].ok and replies[b"page"].body["jobs"] == []


def test_a_status_named_twice_is_a_filter_not_an_error(open_store: Opener) -> None:
    engine = _engine(open_store())
    engine.submit([{"task": "t", "id": "a"}])
    engine.flush()
    _answer(engine, p.LIST, b"twice", {"status": [*STATES, *STATES]})
    _answer(engine, p.RETRY_MANY, b"retry", {"status": ["failed", "failed", "cancelled"]})
    replies = _replies(engine)
    assert [j["id"] for j in replies[b"twice"].body["jobs"]] == ["a"]
    assert replies[b"retry"].ok


# ---------------------------------------------------------------- the backlog: paged reads


def test_ready_pages_read_a_queues_jobs_of_one_task_in_dispatch_order(
        open_store: Opener) -> None:
    engine = _engine(open_store())
    wall = engine.clock.wall()
    ids = engine.submit([{"task": "t", "queue": "q", "priority": i % 3} for i in range(30)])
    engine.submit([{"task": "u", "queue": "q"}, {"task": "t", "queue": "r"},
                   {"task": "t", "queue": "q", "run_at": wall + 60},  # scheduled: not ready
                   {"kind": "exec", "queue": "q", "spec": {"entry": "main.py"}}])
    engine.flush()
    store = engine.store
    expected = ids[2::3] + ids[1::3] + ids[0::3]
    read, edge = [], None
    while True:  # pages of 4 that cross from one priority to the next
        page = store.ready_page("q", "t", edge, 4, wall)
        read += [job.id for job in page]
        if len(page) < 4:
            break
        edge = (-page[-1].priority, page[-1].order)
    assert read == expected
    assert [job.task for job in store.ready_page("q", "<exec>", None, 9, wall)] == [None]
    assert store.queued_needs() == {("q", "t"): 30, ("q", "u"): 1, ("r", "t"): 1,
                                    ("q", "<exec>"): 1}
    later = store.ready_page("q", "t", None, 99, wall + 61)  # the timeline queues it first
    assert len(later) == 30


def test_due_pages_read_the_waiting_jobs_by_run_at(open_store: Opener) -> None:
    engine = _engine(open_store())
    wall = engine.clock.wall()
    ids = engine.submit([{"task": "t", "run_at": wall + 100 - i} for i in range(10)])
    engine.submit([{"task": "t"}])  # ready now: waits for no time
    engine.flush()
    store = engine.store
    first = store.due_page(None, 4, wall)
    assert [job.id for job in first] == ids[9:5:-1]
    rest = store.due_page((first[-1].run_at, first[-1].order), 10, wall)
    assert [job.id for job in rest] == ids[5::-1]


def test_a_queued_job_due_before_the_broker_started_is_left_to_the_ready_pages(
        open_store: Opener) -> None:
    engine = _engine(open_store())
    wall = engine.clock.wall()
    [due, later] = engine.submit([{"task": "t", "run_at": wall + 5, "max_retries": 1},
                                  {"task": "t", "run_at": wall + 50}])
    engine.clock.t += 10
    engine.tick()  # `due` is queued now, with its run_at in the past
    engine.flush()
    assert engine.store.statuses([due]) == {due: "queued"}
    since = engine.clock.wall()
    assert [job.id for job in engine.store.due_page(None, 9, since)] == [later]
    assert [job.id for job in engine.store.due_page(None, 9, wall)] == [due, later]


def test_purge_pages_and_dependents_and_jobs_by_state(open_store: Opener) -> None:
    engine = _engine(open_store())
    [parent] = engine.submit([{"task": "t", "queue": "p"}])
    children = engine.submit([{"task": "t", "depends_on": [parent]} for _ in range(5)])
    queued = engine.submit([{"task": "t"} for _ in range(5)])
    engine.flush()
    store = engine.store
    assert sorted(store.dependents(parent)) == sorted(children)
    assert [job.id for job in store.jobs_in("deferred", 3)] == sorted(children)[:3]
    assert sorted(job.id for job in store.load_jobs(children[:2] + ["none"])) == \
        sorted(children[:2])
    first = store.purge_page("default", "queued", "", 10**9, 3)
    assert [job.id for job in first] == sorted(queued)[:3]
    assert [job.id for job in store.purge_page("default", "queued", first[-1].id, 10**9, 3)] \
        == sorted(queued)[3:]
    last_order = store.load_job(queued[1]).order
    assert {job.id for job in store.purge_page("default", "queued", "", last_order, 9)} == \
        set(queued[:2])


def test_a_restart_reads_a_window_of_a_deep_queue(open_store: Opener) -> None:
    engine = Engine(open_store(), FakeClock(), EngineConfig(queue_window=10))
    ids = engine.submit([{"task": "t"} for _ in range(100)])
    engine.flush()
    engine.store.close()
    again = past_restart_grace(Engine(open_store(), FakeClock(), EngineConfig(queue_window=10)))
    assert len(again.active) == 10 and again.job_counts()["queued"] == 100
    ready(again, b"w", "w", capacity=100)
    again.dispatch()
    assert [job["id"] for job in sent_jobs(again)[b"w"]] == ids
