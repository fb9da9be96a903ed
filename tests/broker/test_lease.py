"""The primary's lease: the standby's rule (a fake clock), then on a private PostgreSQL the
lease, the ending of a stale holder's sessions, and a store that gives up the lead."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from tests.postgres import PostgresServer, lock_holder, started_postgres
from tests.waiting import holds_for
from zjobs.broker.stores.leadership import LOCK_KEY, Leadership
from zjobs.broker.stores.lease import Holder, LeaseWatch, claim, create_table
from zjobs.broker.stores.pgstore import GIVE_UP_AFTER_FAILURES, PostgresStore, StoreUnwritable

TTL_S = 0.5


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------ the standby's rule


def test_a_holder_is_stale_once_it_has_looked_the_same_for_its_ttl() -> None:
    clock = Clock()
    watch = LeaseWatch(5.0, clock)
    holder = Holder(pid=7, name="zjobs-broker-1-ab-lock", beats=3, ttl_s=2.0)
    assert not watch.stale(holder)
    clock.t += 1.9
    assert not watch.stale(holder)
    clock.t += 0.1
    assert watch.stale(holder)  # its own TTL (2 s), not the standby's (5 s)


def test_a_renewal_or_a_new_holder_starts_the_watch_again() -> None:
    clock = Clock()
    watch = LeaseWatch(5.0, clock)
    assert not watch.stale(Holder(7, "b-lock", 3, 2.0))
    clock.t += 1.5
    assert not watch.stale(Holder(7, "b-lock", 4, 2.0))   # renewed
    clock.t += 1.5
    assert not watch.stale(Holder(7, "b-lock", 4, 2.0))
    assert not watch.stale(Holder(9, "c-lock", None, None))  # a new holder, no lease yet
    clock.t += 4.9
    assert not watch.stale(Holder(9, "c-lock", None, None))
    clock.t += 0.1
    assert watch.stale(Holder(9, "c-lock", None, None))   # the standby's TTL: 5 s


def test_a_standby_that_was_frozen_itself_judges_nothing_from_the_time_it_lost() -> None:
    clock = Clock()
    watch = LeaseWatch(2.0, clock)
    assert not watch.stale(Holder(7, "b-lock", 3, 2.0))
    clock.t += 60.0  # the standby was stopped; the primary renewed all along
    assert not watch.stale(Holder(7, "b-lock", 243, 2.0))
    assert not watch.stale(None)  # nobody holds the lock: nothing to end


def test_a_holder_names_its_broker_only_if_it_is_a_broker_lock_session() -> None:
    assert Holder(1, "zjobs-broker-12-abcdef-lock", None, None).broker == "zjobs-broker-12-abcdef"
    assert Holder(1, "psql", None, None).broker == ""


# ------------------------------------------------------------ on PostgreSQL


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from started_postgres()


def _session(url: str, name: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, application_name=name)


def _alive(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _acquire_in_thread(leadership: Leadership) -> tuple[threading.Event, threading.Event]:
    """Run `leadership.acquire` on a thread: (stop it, it acquired)."""
    stop, acquired = threading.Event(), threading.Event()

    def run() -> None:
        if leadership.acquire(stop):
            acquired.set()

    threading.Thread(target=run, daemon=True).start()
    return stop, acquired


def test_a_standby_ends_a_silent_holder_s_sessions_and_nobody_else_s(
        postgres: PostgresServer) -> None:
    lock = _session(postgres.url, "zjobs-broker-1-aaaaaa-lock")
    create_table(lock)
    assert lock.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
    claim(lock, "zjobs-broker-1-aaaaaa", TTL_S)  # and never renewed: it froze
    store = _session(postgres.url, "zjobs-broker-1-aaaaaa-store")
    store.execute("CREATE TABLE IF NOT EXISTS fence (n INT)")
    store.execute("BEGIN")
    store.execute("LOCK TABLE fence")  # frozen inside a commit, holding what it locked
    bystander = _session(postgres.url, "zjobs-broker-1-aaaaaa-lockless")
    standby = Leadership(postgres.url, ttl_s=TTL_S)
    stop, acquired = _acquire_in_thread(standby)
    try:
        assert acquired.wait(10)
        assert not _alive(lock) and not _alive(store)
        assert _alive(bystander)
        assert lock_holder(postgres.url).name == f"{standby.name}-lock"
        with psycopg.connect(postgres.url) as conn:  # what the frozen commit held is free
            conn.execute("SET lock_timeout = '2s'")
            conn.execute("LOCK TABLE fence")
    finally:
        stop.set()
        standby.release()
        for conn in (lock, store, bystander):
            conn.close()


def test_a_primary_that_renews_is_never_ended(postgres: PostgresServer) -> None:
    primary = Leadership(postgres.url, ttl_s=TTL_S)
    assert primary.acquire(threading.Event())
    lost = threading.Event()
    primary.watch(lost.set)
    standby = Leadership(postgres.url, ttl_s=TTL_S)
    stop, acquired = _acquire_in_thread(standby)
    try:
        holds_for(lambda: not acquired.is_set(), 8 * TTL_S, message="the primary's lead")
        assert not lost.is_set()
        primary.release()
        assert acquired.wait(5)  # the lock is free: taken at the next poll
    finally:
        stop.set()
        primary.release()
        standby.release()
    assert not lost.is_set()  # released, not lost


def test_a_primary_whose_lock_session_is_ended_is_told_at_once(postgres: PostgresServer
                                                                ) -> None:
    primary = Leadership(postgres.url, ttl_s=TTL_S)
    assert primary.acquire(threading.Event())
    lost = threading.Event()
    primary.watch(lost.set)
    try:
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (lock_holder(postgres.url).pid,))
        assert lost.wait(2 * TTL_S)
    finally:
        primary.release()


# ------------------------------------------------------------ a store that cannot write


def _failing_commit(store: PostgresStore) -> None:
    store.commit([], [], [], [], {"last_seq": "not a number"})  # refused by the database


def test_a_store_gives_up_the_lead_after_failing_for_its_ttl(postgres: PostgresServer) -> None:
    clock = Clock()
    store = PostgresStore(postgres.url, lease_ttl_s=2.0, clock=clock)
    try:
        for _ in range(GIVE_UP_AFTER_FAILURES):
            with pytest.raises(psycopg.Error):
                _failing_commit(store)
            clock.t += 0.5
        clock.t += 0.25
        with pytest.raises(psycopg.Error):  # failing for 1.75 s: not yet
            _failing_commit(store)
        clock.t += 0.25
        with pytest.raises(StoreUnwritable):  # 2 s: it gives up
            _failing_commit(store)
        with pytest.raises(StoreUnwritable):  # and commits nothing more, even what it could
            store.commit([], [], [], [], {"given_up": 1})
        assert not store.db.execute("SELECT 1 FROM meta WHERE key = 'given_up'").fetchall()
    finally:
        store.close()


def test_a_commit_that_succeeds_starts_the_count_again(postgres: PostgresServer) -> None:
    clock = Clock()
    store = PostgresStore(postgres.url, lease_ttl_s=2.0, clock=clock)
    try:
        for _ in range(GIVE_UP_AFTER_FAILURES):
            with pytest.raises(psycopg.Error):
                _failing_commit(store)
        clock.t += 10.0
        store.commit([], [], [], [], {"fine": 1})  # the store could write again: no give-up
        for _ in range(GIVE_UP_AFTER_FAILURES):
            with pytest.raises(psycopg.Error):  # a new run of failures, not yet 2 s long
                _failing_commit(store)
        store.commit([], [], [], [], {"fine": 2})
    finally:
        store.close()


def test_many_failures_in_less_than_the_ttl_keep_the_lead(postgres: PostgresServer) -> None:
    clock = Clock()
    store = PostgresStore(postgres.url, lease_ttl_s=2.0, clock=clock)
    try:
        for _ in range(50):
            with pytest.raises(psycopg.Error):  # StoreUnwritable is no psycopg.Error
                _failing_commit(store)
            clock.t += 0.03125
        store.commit([], [], [], [], {"fine": 3})
    finally:
        store.close()
