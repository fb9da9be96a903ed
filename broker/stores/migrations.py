"""The store's schema and its versions: a data directory from any older zjobs opens and upgrades.

The version lives in SQLite's `user_version`. Each entry of `MIGRATIONS`
takes the schema from the version before it to its own, in one
transaction; `migrate` runs the missing ones on start. A data directory
written before versions existed (user_version 0 with a `jobs` table) has
the layout of version 1. One that is newer than this code is refused, so
an old binary never writes to a schema it does not know.

To change the schema: append an entry (never edit one that has shipped),
and describe the layout change in its SQL. Data that SQL cannot derive (it
is packed with msgpack) is filled in by the version's entry in `BACKFILLS`,
in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import structlog

from zjobs.broker.wire.errors import StartError

log = structlog.get_logger(__name__)

BASELINE = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    task TEXT,
    priority INTEGER NOT NULL,
    timeout_s REAL,
    max_retries INTEGER NOT NULL,
    retry_backoff_s REAL NOT NULL,
    run_at REAL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    worker TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    payload BLOB,
    result BLOB,
    error BLOB,
    progress BLOB,
    log_lines INTEGER NOT NULL DEFAULT 0,
    ord INTEGER NOT NULL,
    lost_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    job_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (job_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# What a job needs from a worker (`broker.workers.requirement`) in SQL: the key of the ready
# index, so a queue's jobs of one task (or of kind exec, or function) are read in dispatch
# order. A test holds it to `requirement`; changing it takes a new index, in a new migration.
NEED_SQL = ("CASE kind WHEN 'exec' THEN '<exec>' WHEN 'function' THEN '<pickle>' "
            "ELSE COALESCE(task, '') END")

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "baseline: jobs, logs, artifacts, meta", BASELINE),
    (2, "indexes for listing by queue, task and worker", """
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(queue, status, id);
CREATE INDEX IF NOT EXISTS jobs_task ON jobs(task, id);
CREATE INDEX IF NOT EXISTS jobs_worker ON jobs(worker, id) WHERE worker IS NOT NULL;
"""),
    (3, "artifacts sent in chunks: the attempt that made an artifact, and its chunks", """
ALTER TABLE artifacts ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS artifact_chunks (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, name, attempt, idx)
);
"""),
    (4, "schedules: periodic jobs; jobs.schedule: the schedule that submitted a job", """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    args BLOB NOT NULL,
    kwargs BLOB NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    timeout_s REAL,
    max_retries INTEGER NOT NULL,
    cron TEXT,
    every_s REAL,
    next_run_at REAL NOT NULL,
    last_run_at REAL,
    created_at REAL NOT NULL
);
ALTER TABLE jobs ADD COLUMN schedule TEXT;
"""),
    (5, "jobs.depends_on: the ids of the jobs a job waits for, packed", """
ALTER TABLE jobs ADD COLUMN depends_on BLOB;
"""),
    (6, "queues: the settings of a queue (paused, rate limit), kept across restarts", """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    rate_limit REAL
);
"""),
    (7, "job_dependencies: which jobs depend on a job (its dependents), indexed", """
CREATE TABLE IF NOT EXISTS job_dependencies (
    depends_on TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (depends_on, job_id)
);
"""),
    (8, "deep queues: the queued jobs of a queue and requirement in dispatch order, and the "
        "waiting jobs in run_at order, each read a page at a time", f"""
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(queue, ({NEED_SQL}), priority DESC, ord)
    WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(run_at, ord)
    WHERE run_at IS NOT NULL AND status IN ('scheduled', 'queued');
"""),
    (9, "one index fewer on every insert and status change: a status is read through "
        "jobs_queue, a queue at a time (broker/stores/store.py)", """
DROP INDEX IF EXISTS jobs_status;
"""),
]
VERSION = MIGRATIONS[-1][0]


INSERT_DEPENDENCY = ("INSERT INTO job_dependencies (depends_on, job_id) VALUES (?, ?) "
                     "ON CONFLICT DO NOTHING")


def dependency_rows(jobs: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """The job_dependencies rows of `(job id, packed depends_on or None)` pairs."""
    return [(dep, job_id) for job_id, packed in jobs if packed is not None
            for dep in msgpack.unpackb(bytes(packed))]


def _backfill_dependencies(db: Any) -> None:
    """The job_dependencies rows of the jobs stored before version 7."""
    rows = db.execute("SELECT id, depends_on FROM jobs WHERE depends_on IS NOT NULL").fetchall()
    db.executemany(INSERT_DEPENDENCY, dependency_rows(rows))


BACKFILLS: dict[int, Callable[[Any], None]] = {7: _backfill_dependencies}


class Dialect:
    """Where a database keeps its schema version, and how the DDL above reads in it.

    The migrations are written once, in SQLite's words; `ddl` rewrites them for another
    database (see `PostgresDialect` in broker/pgstore.py).
    """

    def version(self, db: Any) -> int:
        """The schema version of `db`: 0 for an empty database."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone():
            return 1  # written before the schema carried a version
        return version

    def begin(self, db: Any) -> None:
        db.execute("BEGIN IMMEDIATE")

    def set_version(self, db: Any, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def ddl(self, sql: str) -> str:
        return sql


SQLITE = Dialect()


def version_of(db: Any, dialect: Dialect = SQLITE) -> int:
    return dialect.version(db)


def migrate(db: Any, where: object, dialect: Dialect = SQLITE) -> list[int]:
    """Bring `db` to `VERSION`; the versions applied, in order. `where` names it in errors."""
    current = dialect.version(db)
    if current > VERSION:
        raise StartError(f"the store {where} has schema version {current}, newer than this "
                         f"zjobs knows ({VERSION}); run a newer zjobs on it")
    applied = []
    for version, _, sql in MIGRATIONS:
        if version <= current:
            continue
        dialect.begin(db)
        try:
            if dialect.version(db) >= version:  # another broker migrated meanwhile
                db.execute("COMMIT")
                continue
            for statement in _statements(dialect.ddl(sql)):
                db.execute(statement)
            if version in BACKFILLS:
                BACKFILLS[version](db)
            dialect.set_version(db, version)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(version)
    if current and applied:
        _note_upgrade(where, current, applied[-1])
    return applied


def _statements(script: str) -> list[str]:
    """`executescript` would commit our transaction; split on complete statements instead."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    return [s for s in out if s]


def _note_upgrade(where: object, old: int, new: int) -> None:
    log.info("store.upgraded", store=str(where), old=old, new=new)
