"""The embedded durable store: SQLite in WAL mode under the data dir.

Writes are buffered by the broker loop and committed together in one
transaction per loop turn (`commit`), so a batch of thousands of jobs costs
one commit. Reads go straight to the database; the broker only answers them
after the turn's commit, so they see every acknowledged change.
"""

from __future__ import annotations

import builtins
import functools
import heapq
import itertools
import operator
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from zjobs.broker.stores.migrations import INSERT_DEPENDENCY, NEED_SQL, dependency_rows, migrate
from zjobs.broker.stores.rows import ATTRS, COLUMNS, INSERT, insert_jobs, insert_row, update_jobs
from zjobs.broker.wire.jobs import TERMINAL, Job
from zjobs.broker.wire.schedule import COLUMNS as SCHEDULE_COLUMNS
from zjobs.broker.wire.schedule import Schedule
from zjobs.broker.wire.schedule import from_row as schedule_from_row
from zjobs.broker.wire.schema import STORED
from zjobs.broker.wire.settings import default

_QUEUE_UPSERT = ("INSERT INTO queues (name, paused, rate_limit) VALUES (?, ?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
                 "rate_limit = excluded.rate_limit")


class Checkpointer(threading.Thread):
    """Copies the WAL back into the database from its own thread and connection.

    SQLite's automatic checkpoint runs inside whichever commit crosses the
    threshold, with fsyncs, stalling the broker loop for milliseconds; a
    PASSIVE checkpoint here never blocks the writer.
    """

    def __init__(self, path: Path, interval_s: float = 0.5) -> None:
        super().__init__(name="zjobs-checkpoint", daemon=True)
        self._path = path
        self._interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._stop_event.wait(self._interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError:
                    continue  # busy: the next round will do it
        finally:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            db.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class Store:
    """SQLite-backed job store. Not thread-safe: the broker loop owns it.

    Its SQL is the common dialect of SQLite and PostgreSQL (`?` placeholders, `ON CONFLICT`),
    so `broker/pgstore.py` reuses every query and changes only the connection.
    """

    DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
    MANY_ROWS = True  # many rows to a statement (broker/stores/rows.py)
    # What a row's own values cause (a taken key, a value the column cannot hold), as opposed
    # to a store that cannot write at all (a full disk, a lost connection): see `_probe`.
    ROW_ERRORS: tuple[type[Exception], ...] = (
        sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError,
        sqlite3.ProgrammingError, OverflowError, ValueError, TypeError)
    path: Path | str  # the database file; PgStore: its URL, the password redacted
    db: Any  # a sqlite3 connection; PgStore: a PgConnection, which reads like one

    def __init__(self, data_dir: str | Path, *, sync: str = default("sync")) -> None:
        path = Path(data_dir)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # every job's data: ours alone
        self.path = path = path / "zjobs.db"
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={sync}")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA temp_store=MEMORY")
        migrate(self.db, path)
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = Checkpointer(path)
        self._checkpointer.start()

    def close(self) -> None:
        self._checkpointer.stop()
        self.db.close()

    # ------------------------------------------------------------ writes

    def commit(
        self,
        inserts: list[Job],
        updates: Iterable[Job],
        logs: list[tuple],
        artifacts: list[tuple],
        meta: dict[str, int],
        chunks: list[tuple] | None = None,
        schedules: tuple[list[tuple], list[str]] | None = None,
        queues: list[tuple] | None = None,
    ) -> None:
        """Write one loop turn's changes in a single transaction (all or nothing).

        `chunks` are artifact chunks `(job_id, name, attempt, index, data)` as they arrive;
        `artifacts` rows `(job_id, name, content_type, size, data, attempt)` are the artifacts
        of an accepted result (`data` empty when it is in chunks). They replace those of the
        job's earlier attempts, chunks included.
        `schedules` are the schedule rows to write and the names of those to delete.
        `queues` rows `(name, paused, rate_limit)` are queue settings, each replacing the
        queue's row.
        """
        db = self.db
        db.execute("BEGIN")
        try:
            self._fence()
            if inserts:
                self._insert(inserts)
            update_jobs(db, list(updates), self.MANY_ROWS)
            if logs:
                db.executemany(
                    "INSERT INTO logs (job_id, line, stream, data, ts) VALUES (?,?,?,?,?) "
                    "ON CONFLICT DO NOTHING",
                    logs,
                )
            if chunks:
                db.executemany(
                    "INSERT INTO artifact_chunks (job_id, name, attempt, idx, data) "
                    "VALUES (?,?,?,?,?) ON CONFLICT (job_id, name, attempt, idx) "
                    "DO UPDATE SET data = excluded.data",
                    chunks,
                )
            if artifacts:
                _replace_artifacts(db, artifacts)
            if schedules:
                _write_schedules(db, *schedules)
            if queues:
                db.executemany(_QUEUE_UPSERT, queues)
            if meta:  # one statement: a turn's commit is often of one job (`run()`)
                db.execute(_meta_upsert(len(meta)), [v for item in meta.items() for v in item])
            db.execute("COMMIT")  # inside: a failed COMMIT must not leave the transaction open
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _insert(self, inserts: list[Job]) -> None:
        """New jobs' rows, and the dependency rows of those that have any."""
        insert_jobs(self.db, inserts, self.MANY_ROWS)
        needs = dependency_rows((j.id, j.depends_on) for j in inserts if j.depends_on is not None)
        if needs:
            self.db.executemany(INSERT_DEPENDENCY, needs)

    def _fence(self) -> None:
        """Inside the commit's transaction: refuse to write if this store may no longer.

        The embedded store has one writer by construction; the PostgreSQL store checks its
        leadership generation here.
        """

    def refused_inserts(self, inserts: list[Job]) -> list[tuple[Job, str]]:
        """The jobs whose row the store refuses, each with the reason.

        Each row is tried in a transaction that is rolled back: nothing is written.
        """
        return self._probe(INSERT, [(job, insert_row(job)) for job in inserts])

    def refused_settings(self, queues: list[tuple], schedules: list[tuple]
                         ) -> dict[tuple[str, str], str]:
        """The queue settings and schedule rows (as `commit` takes them) the store refuses,
        by `("queue" | "schedule", name)`, each with the reason. Nothing is written."""
        keyed = [(("queue", row[0]), row) for row in queues]
        found = self._probe(_QUEUE_UPSERT, keyed)
        found += self._probe(_SCHEDULE_UPSERT, [(("schedule", row[0]), row) for row in schedules])
        return dict(found)

    def _probe(self, sql: str, keyed_rows: list[tuple[Any, tuple]]) -> list[tuple[Any, str]]:
        """The keys of the rows `sql` fails on, with the reason, each row tried alone in a
        transaction rolled back at the end. An error that is not the row's (`ROW_ERRORS`)
        is raised: a store that cannot write refuses no row in particular."""
        refused: list[tuple[Any, str]] = []
        db = self.db
        db.execute("BEGIN")
        try:
            for key, row in keyed_rows:
                db.execute("SAVEPOINT probe")
                try:
                    db.execute(sql, row)
                except self.ROW_ERRORS as exc:
                    refused.append((key, (str(exc).strip().splitlines() or [repr(exc)])[0]))
                db.execute("ROLLBACK TO probe")
                db.execute("RELEASE probe")
        finally:
            db.execute("ROLLBACK")
        return refused

    def purge_finished(self, before: float, limit: int = 5000) -> Counter[tuple[str, str]]:
        """Delete up to `limit` jobs that finished before `before`, with their logs and artifacts.

        Returns how many were deleted per (queue, status).
        """
        found = self.db.execute(
            "SELECT id, queue, status FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? "
            "LIMIT ?",
            (before, limit),
        ).fetchall()
        purged: Counter[tuple[str, str]] = Counter((q, s) for _, q, s in found)
        if not found:
            return purged
        rows = [(i,) for i, _, _ in found]
        self.db.execute("BEGIN")
        self.db.executemany("DELETE FROM logs WHERE job_id = ?", rows)
        self.db.executemany("DELETE FROM artifacts WHERE job_id = ?", rows)
        self.db.executemany("DELETE FROM artifact_chunks WHERE job_id = ?", rows)
        self.db.executemany("DELETE FROM job_dependencies WHERE job_id = ?", rows)
        self.db.executemany("DELETE FROM jobs WHERE id = ?", rows)
        self.db.execute("COMMIT")
        return purged

    # ------------------------------------------------------------ reads

    def meta(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def queue_settings(self) -> dict[str, tuple[bool, float | None]]:
        """Each configured queue's (paused, rate_limit)."""
        cursor = self.db.execute("SELECT name, paused, rate_limit FROM queues")
        return {name: (bool(paused), rate) for name, paused, rate in cursor}

    def load_active(self) -> list[Job]:
        """Every job not yet finished, oldest first: for tests and tools. A broker never
        reads them all: it reads its windows a page at a time (`ready_page`, `due_page`)."""
        placeholders = ",".join("?" * len(TERMINAL))
        cursor = self.db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE status NOT IN ({placeholders}) "
            "ORDER BY ord",
            tuple(TERMINAL),
        )
        return [_row_to_job(row) for row in cursor]

    def counts(self) -> dict[tuple[str, str], int]:
        cursor = self.db.execute("SELECT queue, status, COUNT(*) FROM jobs GROUP BY queue, status")
        return {(q, s): n for q, s, n in cursor}

    # ------------------------------------------------------------ the backlog, a page at a time
    # The broker keeps a window of each queue's next jobs in memory (broker/core/engine.py); these
    # read the rest in order, each from an index, so a read costs its page, not the backlog.

    def queued_needs(self) -> dict[tuple[str, str], int]:
        """Queued jobs per (queue, requirement): what `unserved` is counted from."""
        cursor = self.db.execute(_QUEUED_NEEDS)
        return {(q, need): n for q, need, n in cursor}

    def ready_page(self, queue: str, need: str, after: tuple[int, int] | None, limit: int,
                   now: float) -> list[Job]:
        """The next `limit` queued jobs of `queue` that need `need` and are due by `now`, in
        dispatch order (priority, then FIFO), after the key `after`: `(-priority, order)` of
        the last one read, None for the first page."""
        if after is None:
            return self._jobs(_READY_FIRST, (queue, need, now, limit))
        priority, order = -after[0], after[1]
        jobs = self._jobs(_READY_SAME, (queue, need, priority, order, now, limit))
        if len(jobs) < limit:
            jobs += self._jobs(_READY_LOWER, (queue, need, priority, now, limit - len(jobs)))
        return jobs

    def due_page(self, after: tuple[float, int] | None, limit: int, since: float) -> list[Job]:
        """The next `limit` jobs that wait for a time (scheduled, or queued with a `run_at`) by
        `(run_at, order)` after `after` (None: from the first). Queued ones due at or before
        `since` are left out: a broker that started at `since` finds those by `ready_page`."""
        if after is None:
            return self._jobs(_DUE_FIRST, (since, limit))
        return self._jobs(_DUE_AFTER, (since, *after, limit))

    def jobs_in(self, status: str, limit: int | None = None) -> list[Job]:
        """Up to `limit` jobs in `status` (all of them for None), oldest first: the running
        jobs a restarted broker resumes, a first page of the deferred ones."""
        return [_row_to_job(row) for row in self._in_statuses([status], None, None, limit)]

    def queues(self) -> builtins.list[str]:
        """Every queue that holds a job: a lookup in jobs_queue per queue (a loose index
        scan), however many jobs each holds."""
        return [name for name, in self.db.execute(_QUEUES)]

    def _in_statuses(self, statuses: builtins.list[str], queue: str | None,
                     before: str | None, limit: int | None, newest_first: bool = False
                     ) -> builtins.list[tuple]:
        """The rows in any of `statuses` (of `queue`, or of any queue), by id (newest first:
        those before the id `before`), `limit` of them or all for None.

        No index leads with the status (one fewer to write on every insert and status
        change, migration 9): jobs_queue gives each (queue, status) its rows in id order,
        and they are merged, a page from each.
        """
        if newest_first:
            sql = _BY_STATUS_NEWEST if before is None else _BY_STATUS_BEFORE
        else:
            sql = _BY_STATUS_OLDEST if limit is not None else _BY_STATUS_ALL
        bounds = (() if before is None else (before,)) + (() if limit is None else (limit,))
        pages = [self.db.execute(sql, (name, status, *bounds)).fetchall()
                 for name in ([queue] if queue is not None else self.queues())
                 for status in statuses]
        merged = heapq.merge(*pages, key=_row_id, reverse=newest_first)
        return builtins.list(itertools.islice(merged, limit))

    def purge_page(self, queue: str, status: str, after: str, last_order: int, limit: int
                   ) -> list[Job]:
        """The next `limit` jobs of `queue` in `status` by id after `after`, of those submitted
        at or before `last_order` (a purge's page: `Engine.purge`)."""
        return self._jobs(_PURGE_PAGE, (queue, status, after, last_order, limit))

    def dependents(self, job_id: str) -> list[str]:
        """The ids of the jobs that depend on `job_id`."""
        cursor = self.db.execute("SELECT job_id FROM job_dependencies WHERE depends_on = ?",
                                 (job_id,))
        return [row[0] for row in cursor]

    def load_jobs(self, ids: Iterable[str]) -> list[Job]:
        ids = list(ids)
        found: list[Job] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found += self._jobs(f"{_SELECT} WHERE id IN ({','.join('?' * len(chunk))})",
                                tuple(chunk))
        return found

    def _jobs(self, sql: str, params: tuple) -> list[Job]:
        return [_row_to_job(row) for row in self.db.execute(sql, params)]

    def load_job(self, job_id: str) -> Job | None:
        row = self.db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return _row_to_job(row) if row else None

    def get(self, job_id: str) -> dict[str, Any] | None:
        job = self.load_job(job_id)
        return job.to_wire() if job else None

    def exists(self, job_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is not None

    def get_many(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor = self.db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM jobs "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in cursor:
                job = _row_to_job(row)
                found[job.id] = job.to_wire()
        return found

    def load_schedules(self) -> list[Schedule]:
        cursor = self.db.execute(
            f"SELECT {', '.join(_SCHEDULE_COLUMNS)} FROM schedules ORDER BY name")
        return [schedule_from_row(tuple(row)) for row in cursor]

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        """The status of each of `ids` the store holds (job id -> status)."""
        ids = list(ids)
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor = self.db.execute(
                f"SELECT id, status FROM jobs WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update(dict(cursor))
        return found

    def find_idempotent(self, key: str) -> str | None:
        row = self.db.execute("SELECT id FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def list(self, filters: dict[str, Any], cursor: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; `cursor` is the last id of the previous page; a list as a filter's
        value matches any of its items; `depends_on` keeps the jobs that depend on that id."""
        statuses, queue = filters.get("status"), filters.get("queue")
        if statuses is not None and not isinstance(queue, builtins.list) and all(
                filters.get(key) is None for key in ("task", "worker", "depends_on")):
            found = self._in_statuses(statuses if isinstance(statuses, builtins.list)
                                      else [statuses], queue, cursor, limit, newest_first=True)
            return [_row_to_job(row).to_wire() for row in found]
        where, params = [], []
        for column in ("status", "queue", "task", "worker"):
            value = filters.get(column)
            if isinstance(value, list):
                where.append(f"{column} IN ({', '.join('?' * len(value))})")
                params.extend(value)
            elif value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if filters.get("depends_on") is not None:  # the job's dependents
            where.append("id IN (SELECT job_id FROM job_dependencies WHERE depends_on = ?)")
            params.append(filters["depends_on"])
        if cursor:
            where.append("id < ?")
            params.append(cursor)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {', '.join(COLUMNS)} FROM jobs {clause} ORDER BY id DESC LIMIT ?"
        return [_row_to_job(r).to_wire() for r in self.db.execute(sql, (*params, limit))]

    # builtins.list: in this class `list` is the method above (mypy reads it so)
    def logs(self, job_id: str, since: int, limit: int) -> builtins.list[dict[str, Any]]:
        cursor = self.db.execute(
            "SELECT line, stream, data, ts FROM logs WHERE job_id = ? AND line > ? "
            "ORDER BY line LIMIT ?",
            (job_id, since, limit),
        )
        return [{"line": n, "stream": s, "data": d, "ts": t} for n, s, d, t in cursor]

    def artifacts(self, job_id: str) -> builtins.list[dict[str, Any]]:
        cursor = self.db.execute(
            "SELECT name, content_type, size FROM artifacts WHERE job_id = ? ORDER BY name",
            (job_id,),
        )
        return [{"name": n, "content_type": c, "size": s} for n, c, s in cursor]

    def artifact(self, job_id: str, name: str) -> tuple[str, bytes] | None:
        """(content type, data) of one artifact, its chunks joined."""
        row = self.db.execute(
            "SELECT content_type, data, attempt FROM artifacts WHERE job_id = ? AND name = ?",
            (job_id, name),
        ).fetchone()
        if row is None:
            return None
        chunks = self.db.execute(
            "SELECT data FROM artifact_chunks WHERE job_id = ? AND name = ? AND attempt = ? "
            "ORDER BY idx",
            (job_id, name, row[2]),
        )
        return row[0], b"".join([bytes(row[1]), *(bytes(c) for c, in chunks)])


_SCHEDULE_COLUMNS = ("name", *SCHEDULE_COLUMNS)
_SCHEDULE_UPSERT = (
    f"INSERT INTO schedules ({', '.join(_SCHEDULE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_SCHEDULE_COLUMNS))}) ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SCHEDULE_COLUMNS))


def _write_schedules(db: Any, rows: list[tuple], deletes: list[str]) -> None:
    if rows:
        db.executemany(_SCHEDULE_UPSERT, rows)
    if deletes:
        db.executemany("DELETE FROM schedules WHERE name = ?", [(n,) for n in deletes])


@functools.cache
def _meta_upsert(rows: int) -> str:
    values = ", ".join(["(?, ?)"] * rows)
    return (f"INSERT INTO meta (key, value) VALUES {values} "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value")


def _replace_artifacts(db: Any, artifacts: list[tuple]) -> None:
    attempts = {(row[0], row[5]) for row in artifacts}
    for table in ("artifacts", "artifact_chunks"):
        db.executemany(f"DELETE FROM {table} WHERE job_id = ? AND attempt < ?", attempts)
    db.executemany(
        "INSERT INTO artifacts (job_id, name, content_type, size, data, attempt) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT (job_id, name) DO UPDATE SET "
        "content_type = excluded.content_type, size = excluded.size, data = excluded.data, "
        "attempt = excluded.attempt",
        artifacts,
    )


_SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
# `INDEXED BY` names the index a query is written for (SQLite, without statistics, may pick
# another and sort); the PostgreSQL store drops it (its planner has them).
_QUEUED_NEEDS = (f"SELECT queue, {NEED_SQL}, COUNT(*) FROM jobs INDEXED BY jobs_ready "
                 f"WHERE status = 'queued' GROUP BY queue, {NEED_SQL}")
# The ready index (migration 8): a queue's queued jobs of one requirement by priority, then
# order; a page after a key is those of its priority after its order, then the lower ones.
_READY = f"{_SELECT} INDEXED BY jobs_ready WHERE queue = ? AND {NEED_SQL} = ? AND status = 'queued'"
_DUE_NOW = "(run_at IS NULL OR run_at <= ?)"
_READY_FIRST = f"{_READY} AND {_DUE_NOW} ORDER BY priority DESC, ord LIMIT ?"
_READY_SAME = f"{_READY} AND priority = ? AND ord > ? AND {_DUE_NOW} ORDER BY ord LIMIT ?"
_READY_LOWER = f"{_READY} AND priority < ? AND {_DUE_NOW} ORDER BY priority DESC, ord LIMIT ?"
# The due index (migration 8): the jobs waiting for a time, by (run_at, order).
_DUE = (f"{_SELECT} INDEXED BY jobs_due WHERE run_at IS NOT NULL "
        "AND status IN ('scheduled', 'queued') AND (status = 'scheduled' OR run_at > ?)")
_DUE_FIRST = f"{_DUE} ORDER BY run_at, ord LIMIT ?"
_DUE_AFTER = f"{_DUE} AND (run_at, ord) > (?, ?) ORDER BY run_at, ord LIMIT ?"
# A status is read a queue at a time (`Store._in_statuses`): the queues by a loose scan of
# jobs_queue, then each (queue, status) from it in id order.
_QUEUES = ("WITH RECURSIVE q(name) AS (SELECT MIN(queue) FROM jobs UNION ALL "
           "SELECT (SELECT MIN(queue) FROM jobs WHERE queue > q.name) FROM q "
           "WHERE q.name IS NOT NULL) SELECT name FROM q WHERE name IS NOT NULL")
_BY_STATUS = f"{_SELECT} INDEXED BY jobs_queue WHERE queue = ? AND status = ?"
_BY_STATUS_ALL = f"{_BY_STATUS} ORDER BY id"
_BY_STATUS_OLDEST = f"{_BY_STATUS_ALL} LIMIT ?"
_BY_STATUS_NEWEST = f"{_BY_STATUS} ORDER BY id DESC LIMIT ?"
_BY_STATUS_BEFORE = f"{_BY_STATUS} AND id < ? ORDER BY id DESC LIMIT ?"
_row_id = operator.itemgetter(COLUMNS.index("id"))
_PURGE_PAGE = (f"{_SELECT} INDEXED BY jobs_queue WHERE queue = ? AND status = ? AND id > ? "
               "AND ord <= ? ORDER BY id LIMIT ?")


def _reader_source() -> str:
    """`_row_to_job`: the row's values straight into the job's slots, a stored field's
    default where the row has none (what `Job(**fields)` does, at a fraction of its cost:
    a deep queue reads every job it runs)."""
    lines = ["def _row_to_job(row):", "    job = _new(Job)",
             f"    ({', '.join(f'job.{name}' for name in ATTRS)},) = row"]
    for index, field in enumerate(STORED):
        if field.default is not None:
            lines += [f"    if job.{field.name} is None:",
                      f"        job.{field.name} = _STORED[{index}].default"]
    lines.append("    return job")
    return "\n".join(lines)


_reader: dict[str, Any] = {"_new": object.__new__, "Job": Job, "_STORED": STORED}
exec(_reader_source(), _reader)  # noqa: S102 - code built from the schema's own names
_row_to_job: Callable[[tuple], Job] = _reader["_row_to_job"]

