"""The primary's lease in PostgreSQL: renewed by the primary, watched by the standbys.

Leadership is an advisory lock held by a database session (`broker/leadership.py`).
A session outlives a process that is frozen (SIGSTOP, a suspended VM, a host cut
off on one side), and a frozen primary serves nobody. So the primary also renews
a lease, the one row of `zjobs_lease`, every TTL/8 on its lock connection. Each
time a standby polls the lock (every 0.25 s) it reads who holds it and that
holder's lease. When neither has moved for a whole TTL of the standby's own
monotonic clock, the holder is stale: the standby ends its sessions
(`pg_terminate_backend`: the lock session, and the store session found by its
name, so that a commit the holder froze inside does not keep the generation row
locked), which releases the lock, and takes the lead. If the old primary ever
resumes, its sessions are gone and the generation has moved on
(`broker/pgstore.py`): it commits nothing and stops serving.

A standby judges by what it sees change, never by comparing timestamps, so the
clocks of different hosts never meet; a standby that was frozen itself finds the
beats moved on and judges nothing from the time it lost. The primary measures its
lease from the moment it sent each renewal, so its own view expires no later than
any standby's: it stops serving before a standby can act.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg

from zjobs.broker.stores.pgstore import MIGRATION_LOCK

RENEWALS_PER_TTL = 8

_TABLE = """CREATE TABLE IF NOT EXISTS zjobs_lease (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    lock_pid INTEGER NOT NULL,
    ttl_s DOUBLE PRECISION NOT NULL,
    beats BIGINT NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL)"""


def create_table(conn: psycopg.Connection) -> None:
    """The lease's table, if it is not there yet (one broker at a time creates it)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(_TABLE)


def claim(conn: psycopg.Connection, holder: str, ttl_s: float) -> None:
    """Write the lease for `holder`, whose lock session is `conn`, just after taking the lock."""
    conn.execute(
        "INSERT INTO zjobs_lease (id, holder, lock_pid, ttl_s, beats, renewed_at) "
        "VALUES (1, %s, pg_backend_pid(), %s, 0, clock_timestamp()) ON CONFLICT (id) DO UPDATE "
        "SET holder = excluded.holder, lock_pid = excluded.lock_pid, ttl_s = excluded.ttl_s, "
        "beats = zjobs_lease.beats + 1, renewed_at = excluded.renewed_at", (holder, ttl_s))


def renew(conn: psycopg.Connection, holder: str) -> bool:
    """One renewal; False if the lease is no longer `holder`'s on this session."""
    cursor = conn.execute(
        "UPDATE zjobs_lease SET beats = beats + 1, renewed_at = clock_timestamp() "
        "WHERE id = 1 AND holder = %s AND lock_pid = pg_backend_pid()", (holder,))
    return cursor.rowcount == 1


@dataclass(frozen=True, slots=True)
class Holder:
    """The lock's holder as a standby sees it: any change of these is a sign of life."""

    pid: int                # its lock session's backend pid
    name: str               # that session's application_name, `<broker name>-lock`
    beats: int | None       # its lease's renewals; None while the lease names someone else
    ttl_s: float | None     # the TTL it renews for; None as above

    @property
    def broker(self) -> str:
        """The broker's name, from its lock session's: '' if that is no zjobs broker."""
        return self.name.removesuffix("-lock") if self.name.endswith("-lock") else ""


def read_holder(conn: psycopg.Connection, lock_key: int) -> Holder | None:
    """Who holds the advisory lock `lock_key`, with its lease; None if nobody does."""
    row = conn.execute(
        "SELECT l.pid, coalesce(a.application_name, ''), z.beats, z.ttl_s FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "LEFT JOIN zjobs_lease z ON z.id = 1 AND z.lock_pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid::bigint = %s AND l.objid::bigint = %s "
        "AND l.objsubid = 1 AND l.granted", (lock_key >> 32, lock_key & 0xFFFF_FFFF)).fetchone()
    return Holder(*row) if row else None


def end_sessions(conn: psycopg.Connection, holder: Holder) -> list[int]:
    """End a stale holder's lock session and its store session; the pids signalled.

    Found first, then ended one by one: inside a WHERE clause PostgreSQL may call
    pg_terminate_backend on rows the other conditions would have excluded.
    Raises psycopg.errors.InsufficientPrivilege if this role may not end them (another
    role's sessions, without pg_signal_backend)."""
    store = f"{holder.broker}-store" if holder.broker else ""
    pids = [pid for (pid,) in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND (pid = %s OR application_name = %s) ORDER BY pid", (holder.pid, store))]
    return [pid for pid in pids if scalar(conn, "SELECT pg_terminate_backend(%s)", (pid,))]


def scalar(conn: psycopg.Connection, sql: LiteralString, params: tuple[Any, ...]) -> Any:
    """The value a query of one row and one column returns (a function call's)."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"no row from {sql}")
    return row[0]


class LeaseWatch:
    """A standby's watch on the lock holder: stale once it has not moved for its TTL.

    `ttl_s` applies to a holder that has not written its lease yet (or never will: a
    broker frozen between taking the lock and claiming the lease); a holder's own
    lease says its TTL.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._seen: Holder | None = None
        self._since = 0.0

    def stale(self, holder: Holder | None) -> bool:
        """Note what a poll saw; True when `holder` has looked the same for its TTL."""
        now = self._clock()
        if holder != self._seen:
            self._seen, self._since = holder, now
            return False
        if holder is None:
            return False
        return now - self._since >= (holder.ttl_s if holder.ttl_s is not None else self.ttl_s)

    def silent_s(self) -> float:
        """Seconds the holder seen last has looked the same."""
        return self._clock() - self._since

    def forget(self) -> None:
        """Start watching afresh (after ending a stale holder, or taking the lead)."""
        self._seen = None
