"""The PostgreSQL store: the same queries as the embedded store, on a PostgreSQL server.

`Store`'s SQL is the common dialect of both databases, so this module only
supplies a connection with sqlite3's face (`?` placeholders, `execute`,
`executemany`), the schema in PostgreSQL's types, and the fence: every
commit first checks, in its own transaction and under a row lock, that the
leadership generation is still the one this broker took (see
`broker/leadership.py`). A broker that lost the lead therefore cannot commit
even one more turn: split brain is impossible, not unlikely.

A turn is still one transaction; psycopg pipelines `executemany`, so a batch
of thousands of inserts is a few round trips, not one per job.

A store that keeps refusing commits gives up the lead: once every commit has
failed for the lease's TTL (at least `GIVE_UP_AFTER_FAILURES` in a row), the
failing commit raises `StoreUnwritable`, a `Fenced`, and so does every later
one, so the broker stops serving and releases the lock for a standby (or for
itself, with a fresh connection and the state as stored).

Every connection is hardened (`connect`): TCP keepalives both ways and
server-side timeouts, so a session whose broker froze or vanished does not
hold its locks for long.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from zjobs.broker.stores.migrations import Dialect, migrate
from zjobs.broker.stores.store import Store
from zjobs.broker.wire.errors import Fenced, StartError

log = structlog.get_logger(__name__)

_TYPES = ((re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bBLOB\b"), "BYTEA"),
          (re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\s*WITHOUT ROWID"), ""))
MIGRATION_LOCK = 0x7A6A6F62_0001  # pg_advisory_xact_lock key: one broker migrates at a time
LEASE_TTL_S = 2.0  # the default of --lease-ttl (broker/lease.py)
GIVE_UP_AFTER_FAILURES = 3


def connect(url: str, *, name: str, ttl_s: float, session: dict[str, Any] | None = None,
            connect_timeout_s: float = 5.0) -> psycopg.Connection:
    """An autocommit connection named `name` in pg_stat_activity, hardened for failover.

    TCP keepalives on both ends and a TCP user timeout find a peer that vanished
    (a frozen VM, a cut network) within a few lease TTLs; `session` adds server
    settings of this connection's role (an idle or idle-in-transaction timeout).
    A setting the server does not know (an older PostgreSQL) is skipped.
    """
    idle_s = max(1, round(ttl_s))
    conn = psycopg.connect(url, autocommit=True, connect_timeout=max(int(connect_timeout_s), 1),
                           application_name=name[:63], keepalives=1, keepalives_idle=idle_s,
                           keepalives_interval=1, keepalives_count=3,
                           tcp_user_timeout=int(ttl_s * 2000))
    settings = {"tcp_keepalives_idle": idle_s, "tcp_keepalives_interval": 1,
                "tcp_keepalives_count": 3, "tcp_user_timeout": int(ttl_s * 2000),
                "client_connection_check_interval": 1000, **(session or {})}
    for key, value in settings.items():
        try:
            conn.execute("SELECT set_config(%s, %s, false)", (key, str(value)))
        except psycopg.errors.UndefinedObject:
            pass
    return conn


_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")  # SQLite's hint; PostgreSQL plans by statistics


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """SQLite's SQL in PostgreSQL's words: `%s` placeholders, no index hints."""
    return _INDEXED_BY.sub("", sql).replace("?", "%s")


class PgConnection:
    """A psycopg connection in autocommit mode that reads like a sqlite3 one."""

    def __init__(self, url: str, *, name: str, ttl_s: float) -> None:
        # A primary frozen inside a commit holds the generation row; the server ends it.
        self.conn = connect(url, name=name, ttl_s=ttl_s, session={
            "idle_in_transaction_session_timeout": int(max(10.0, 5 * ttl_s) * 1000)})

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor:
        return self.conn.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(_placeholders(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


class PostgresDialect(Dialect):
    """The schema version in a one-row table; SQLite's DDL in PostgreSQL's types."""

    def version(self, db: Any) -> int:
        db.execute("CREATE TABLE IF NOT EXISTS zjobs_schema (version BIGINT NOT NULL)")
        row = db.execute("SELECT version FROM zjobs_schema").fetchone()
        return row[0] if row else 0

    def begin(self, db: Any) -> None:
        db.execute("BEGIN")
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def set_version(self, db: Any, version: int) -> None:
        db.execute("DELETE FROM zjobs_schema")
        db.execute("INSERT INTO zjobs_schema (version) VALUES (?)", (version,))

    def ddl(self, sql: str) -> str:
        for pattern, replacement in _TYPES:
            sql = pattern.sub(replacement, sql)
        return sql


class StoreUnwritable(Fenced):
    """Every commit failed for the lease's TTL: this broker gives up the lead."""


class PostgresStore(Store):
    """The job store on PostgreSQL. `generation` (from the leadership) fences every commit.

    `name` is the broker's (its sessions are `<name>-store` and `<name>-lock`, which a
    standby ends when the lease lapses); `lease_ttl_s` is also how long commits may keep
    failing before the store gives up the lead.
    """

    DB_ERRORS = (psycopg.Error,)
    MANY_ROWS = False  # a row a statement, pipelined by psycopg (broker/stores/rows.py)
    ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError,
                  OverflowError, ValueError, TypeError)

    def __init__(self, url: str, *, generation: int | None = None, name: str = "zjobs-broker",
                 lease_ttl_s: float = LEASE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = _redacted(url)
        try:
            self.db = PgConnection(url, name=f"{name}-store", ttl_s=lease_ttl_s)
        except psycopg.OperationalError as exc:
            raise StartError(f"cannot connect to PostgreSQL at {self.path}: "
                             f"{str(exc).strip().splitlines()[-1]}; is it running, and may "
                             "this user connect?") from exc
        migrate(self.db, self.path, PostgresDialect())
        self.generation = generation
        self.give_up_after_s = lease_ttl_s
        self._clock = clock
        self._failures = 0
        self._failing_since = 0.0
        self._given_up = False

    def close(self) -> None:
        self.db.close()

    def take_lead(self) -> int:
        """Become the writer: bump the stored generation and fence every commit with it.

        The UPDATE waits for an old primary's commit in flight (it holds the row), and
        every later commit of that primary sees a generation that is no longer its own.
        """
        row = self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) ON CONFLICT (key) "
            "DO UPDATE SET value = meta.value + 1 RETURNING value").fetchone()
        self.generation = int(row[0])
        log.info("broker.primary", generation=self.generation)
        return self.generation

    def _fence(self) -> None:
        if self.generation is None:
            return
        row = self.db.execute(
            "SELECT value FROM meta WHERE key = 'generation' FOR UPDATE").fetchone()
        if row is None or row[0] != self.generation:
            raise Fenced(f"leadership generation is {row[0] if row else None}, this broker "
                         f"holds {self.generation}: another broker has taken over")

    def commit(self, inserts: list, updates: Any, logs: list[tuple], artifacts: list[tuple],
               meta: dict[str, int], chunks: list[tuple] | None = None,
               schedules: tuple[list[tuple], list[str]] | None = None,
               queues: list[tuple] | None = None) -> None:
        # PostgreSQL's text cannot hold NUL; a log line with one must not block every commit.
        logs = [row if "\x00" not in row[3] else (*row[:3], row[3].replace("\x00", "\ufffd"),
                                                   row[4]) for row in logs]
        if self._given_up:
            raise StoreUnwritable("this store gave up the lead: it commits nothing more")
        try:
            super().commit(inserts, updates, logs, artifacts, meta, chunks, schedules, queues)
        except Fenced:
            raise
        except Exception as exc:
            self._failed(exc)
            raise
        self._failures = 0

    def _failed(self, exc: Exception) -> None:
        """Count a failed commit; raise StoreUnwritable (and commit nothing more) once
        commits have failed for `give_up_after_s`, at least GIVE_UP_AFTER_FAILURES in a
        row: a primary that cannot write must not keep the lead, answering `unavailable`
        while a standby could serve."""
        now = self._clock()
        if not self._failures:
            self._failing_since = now
        self._failures += 1
        failing_s = now - self._failing_since
        if self._failures >= GIVE_UP_AFTER_FAILURES and failing_s >= self.give_up_after_s:
            self._given_up = True
            log.error("broker.giving_up_lead", failed_commits=self._failures,
                      failing_s=round(failing_s, 2), error=repr(exc))
            raise StoreUnwritable(f"every commit failed for {failing_s:.1f} s "
                                  f"({self._failures} in a row): giving up the lead so that a "
                                  "standby (or this broker, reconnected) can serve") from exc


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)
