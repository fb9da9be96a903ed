"""Which broker is primary: the one holding a PostgreSQL advisory lock. The database decides.

A broker on a PostgreSQL store first waits for the lock, on a connection of
its own, serving nothing meanwhile (a standby binds no socket, so clients and
workers that list every broker reach only the primary). Once it holds the
lock it bumps the leadership generation stored beside the jobs; its store
keeps the new value, which checks it inside every commit (see
`broker/pgstore.py`): a broker that lost the lock without noticing is fenced
at its next commit, so two primaries can never both write.

The lock alone would let a frozen primary (SIGSTOP, a suspended VM) lead
forever, since its session stays open. So the primary renews a lease
(`broker/lease.py`) on the lock connection every TTL/8, from a thread of its
own, from the moment it takes the lock; a standby that sees the lease stand
still for a TTL ends the holder's sessions and takes the lock. The primary
stops serving at once when a renewal fails (the database restarted, the
session was ended, the network is gone) or when its own last renewal is a
TTL old (it was frozen or starved): its view of the lease expires before any
standby's. The lock session also carries `idle_session_timeout` (2 TTLs): a
frozen holder loses it server-side even with no standby around.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable

import psycopg
import structlog

from zjobs.broker.stores import lease
from zjobs.broker.stores.pgstore import LEASE_TTL_S, _redacted, connect
from zjobs.broker.wire.errors import StartError

log = structlog.get_logger(__name__)

LOCK_KEY = 0x7A6A6F62_0000  # "zjob" + 0: the advisory lock every broker of a store contends for
POLL_S = 0.25
RETAKE_S = 0.05  # the wait after ending a stale holder: its session is gone within ms


class Leadership:
    """The lock, its lease and the thread renewing it, for one broker process.

    `name` names the broker's sessions (`<name>-lock`, `<name>-store`) in
    pg_stat_activity, so that a standby ending a stale primary finds both.
    """

    def __init__(self, url: str, *, ttl_s: float = LEASE_TTL_S, poll_s: float = POLL_S,
                 wait_for_database: bool = False, name: str | None = None) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.wait_for_database = wait_for_database
        self.name = name or f"zjobs-broker-{os.getpid()}-{secrets.token_hex(3)}"
        self._conn: psycopg.Connection | None = None
        self._connected = False
        self._watch = lease.LeaseWatch(ttl_s)
        self._renewer: threading.Thread | None = None
        self._quit = threading.Event()
        self._lost = threading.Event()
        self._guard = threading.Lock()
        self._on_lost: Callable[[], None] | None = None
        self._renewed = 0.0

    # ------------------------------------------------------------ taking the lead

    def acquire(self, stop: threading.Event, first: bool = True) -> bool:
        """Wait until this broker holds the lock: True; False if `stop` was set first.

        Meanwhile a holder whose lease stands still for its TTL is ended. Once the lock
        is held the lease is claimed and renewed until `release`; the new primary then
        bumps the generation (`PostgresStore.take_lead`)."""
        delay = self.poll_s
        while not stop.is_set():
            try:
                if self._try_acquire():
                    self._start_renewing()
                    return True
                wait_s = RETAKE_S if self._end_stale_holder() else self.poll_s
            except psycopg.Error as exc:
                self._drop()
                if first and not self._connected and not self.wait_for_database:
                    raise StartError(f"cannot connect to PostgreSQL at {_redacted(self.url)}: "
                                     f"{_last_line(exc)}; is it running?") from exc
                log.warning("leadership.database_unreachable", error=_last_line(exc),
                            retry_in_s=round(delay, 2))
                stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = self.poll_s
            stop.wait(wait_s)
        return False

    def _try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = connect(self.url, name=f"{self.name}-lock", ttl_s=self.ttl_s, session={
                "idle_session_timeout": int(2000 * self.ttl_s), "synchronous_commit": "off"})
            self._connected = True
            lease.create_table(self._conn)
            self._watch.forget()
            log.info("broker.standby", store=_redacted(self.url))
        sent = time.monotonic()  # the lease runs from here: no standby can see it earlier
        held = bool(lease.scalar(self._conn, "SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)))
        if held:
            lease.claim(self._conn, self.name, self.ttl_s)
            self._renewed = sent
        return held

    def _end_stale_holder(self) -> bool:
        """End the lock's holder if its lease has stood still for its TTL; True if ended."""
        assert self._conn is not None
        holder = lease.read_holder(self._conn, LOCK_KEY)
        stale = self._watch.stale(holder)  # None too: the watch starts again
        if holder is None or not stale:
            return False
        silent_s = round(self._watch.silent_s(), 2)
        self._watch.forget()
        try:
            ended = lease.end_sessions(self._conn, holder)
        except psycopg.errors.InsufficientPrivilege as exc:
            log.warning("leadership.cannot_end_stale_primary", holder=holder.name,
                        silent_s=silent_s, error=_last_line(exc),
                        hint="grant pg_signal_backend to this role, or run every broker as "
                             "the same role; the holder's idle_session_timeout ends it later")
            return False
        log.warning("leadership.lease_lapsed", holder=holder.name, silent_s=silent_s,
                    ended=ended)
        return bool(ended)

    # ------------------------------------------------------------ keeping it

    def _start_renewing(self) -> None:
        self._quit.clear()
        self._lost.clear()
        self._on_lost = None
        self._renewer = threading.Thread(target=self._renew_until_lost, args=(self._conn,),
                                         name="zjobs-lease", daemon=True)
        self._renewer.start()

    def _renew_until_lost(self, conn: psycopg.Connection) -> None:
        interval_s = self.ttl_s / lease.RENEWALS_PER_TTL
        while not self._quit.wait(interval_s):
            sent = time.monotonic()
            if sent - self._renewed >= self.ttl_s:
                self._lose(f"the lease was not renewed for {sent - self._renewed:.1f} s "
                           "(this process was frozen or starved)")
                return
            try:
                renewed = lease.renew(conn, self.name)
            except psycopg.Error as exc:
                self._lose(_last_line(exc))
                return
            if not renewed:
                self._lose("the lease names another broker")
                return
            self._renewed = sent

    def _lose(self, reason: str) -> None:
        with self._guard:
            if self._lost.is_set() or self._quit.is_set():
                return
            self._lost.set()
            on_lost = self._on_lost
        log.error("broker.lost_lead", error=reason)
        if on_lost is not None:
            on_lost()

    def watch(self, on_lost: Callable[[], None]) -> None:
        """Call `on_lost` (once) as soon as the lead is lost; at once if it already is."""
        with self._guard:
            self._on_lost = on_lost
            lost = self._lost.is_set()
        if lost:
            on_lost()

    def release(self) -> None:
        """Stop renewing and give the lock up (closing its connection releases it)."""
        self._quit.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.join(2 * self.ttl_s + 1)
            if renewer.is_alive():  # stuck in a renewal on a dead link: it keeps the connection
                log.warning("leadership.renewal_stuck", hint="the connection is abandoned")
                self._conn = None
                return
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
