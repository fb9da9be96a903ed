"""Which broker is primary: the one holding a PostgreSQL advisory lock. The database decides.

A broker on a PostgreSQL store first waits for the lock, on a connection of
its own, serving nothing meanwhile (a standby binds no socket, so clients and
workers that list every broker reach only the primary). Once it holds the
lock it bumps the leadership generation stored beside the jobs; its store
keeps the new value, which checks it inside every commit (see
`broker/pgstore.py`): a broker that lost the lock without noticing is fenced
at its next commit, so two primaries can never both write.

A watchdog thread pings the lock connection; when it fails (the database
restarted, the session was terminated, the network is gone) the broker
stops serving at once and goes back to waiting for the lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import psycopg
import structlog

from .errors import StartError
from .pgstore import _redacted

log = structlog.get_logger(__name__)

LOCK_KEY = 0x7A6A6F62_0000  # "zjob" + 0: the advisory lock every broker of a store contends for
POLL_S = 0.25


class Leadership:
    def __init__(self, url: str, *, poll_s: float = POLL_S, wait_for_database: bool = False,
                 name: str | None = None) -> None:
        self.url = url
        self.poll_s = poll_s
        self.wait_for_database = wait_for_database
        self.name = name or f"zjobs-broker-{os.getpid()}"
        self._conn: psycopg.Connection | None = None
        self._watchdog: threading.Thread | None = None
        self._lost = threading.Event()

    # ------------------------------------------------------------ taking the lead

    def acquire(self, stop: threading.Event, first: bool = True) -> bool:
        """Wait until this broker holds the lock: True; False if `stop` was set first.

        The new primary then bumps the generation (`PostgresStore.take_lead`)."""
        delay = self.poll_s
        while not stop.is_set():
            try:
                held = self._try_acquire()
            except psycopg.OperationalError as exc:
                self._drop()
                if first and not self.wait_for_database:
                    raise StartError(f"cannot connect to PostgreSQL at {_redacted(self.url)}: "
                                     f"{_last_line(exc)}; is it running?") from exc
                log.warning("leadership.database_unreachable", error=_last_line(exc),
                            retry_in_s=round(delay, 2))
                stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            if held:
                return True
            stop.wait(self.poll_s)
        return False

    def _try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                         application_name=f"{self.name}-lock")
            log.info("broker.standby", store=_redacted(self.url))
        return bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)
                                       ).fetchone()[0])

    # ------------------------------------------------------------ keeping it

    def watch(self, on_lost: Callable[[], None], interval_s: float = 0.25) -> None:
        """Call `on_lost` (once) as soon as the lock connection fails."""
        self._lost.clear()

        def run() -> None:
            while not self._lost.wait(interval_s):
                try:
                    self._conn.execute("SELECT 1")  # type: ignore[union-attr]
                except (psycopg.Error, AttributeError) as exc:
                    log.error("broker.lost_lead", error=_last_line(exc))
                    self._lost.set()
                    on_lost()

        self._watchdog = threading.Thread(target=run, name="zjobs-leadership", daemon=True)
        self._watchdog.start()

    def release(self) -> None:
        """Stop watching and give the lock up (closing its connection releases it)."""
        self._lost.set()
        if self._watchdog is not None:
            self._watchdog.join(2)
            self._watchdog = None
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
