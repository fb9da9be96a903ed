"""`zjobs broker` on either store: serve at once (SQLite), or as primary or standby (PostgreSQL).

`--store sqlite:///dir` (or no `--store`: the `--data-dir`) is the embedded
store: one broker, serving at once. `--store postgresql://...` makes the
broker one of possibly several on the same database: it waits as a standby,
binding no socket, until it holds the leadership lock (`broker/leadership.py`),
then loads every unfinished job and serves; if it loses the lock it stops
serving at once and waits again. A primary whose lease lapses (it was frozen)
or whose store refused every commit for a lease TTL loses the lead the same way.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from zjobs.broker.server import BrokerConfig, BrokerServer
from zjobs.broker.wire.errors import StartError

if TYPE_CHECKING:
    from zjobs.broker.stores.leadership import Leadership

log = structlog.get_logger(__name__)

STEP_BACK_S = 1.0


def store_kind(config: BrokerConfig) -> tuple[str, str]:
    """("sqlite", data dir) or ("postgresql", url) from `--store` / `--data-dir`."""
    url = config.store
    if not url:
        return "sqlite", config.data_dir
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        return "sqlite", path if path.startswith("/") and not path.startswith("//") \
            else path.lstrip("/") or config.data_dir
    if scheme in ("postgresql", "postgres"):
        return "postgresql", url
    raise StartError(f"unknown store {url!r}: use sqlite:///path/dir or "
                     "postgresql://user:password@host:port/db")


class Broker:
    """The broker process; `stop()` from a signal handler ends `run()`."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._stop = threading.Event()
        self._server: BrokerServer | None = None

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.stop()

    def run(self) -> None:
        kind, where = store_kind(self.config)
        if kind == "sqlite":
            self._server = BrokerServer(dataclasses.replace(self.config, data_dir=where))
            self._server.run()
            return
        self._run_replicated(where)

    def _run_replicated(self, url: str) -> None:
        from zjobs.broker.stores.leadership import Leadership

        leadership = Leadership(url, ttl_s=self.config.lease_ttl_s,
                                wait_for_database=self.config.store_wait)
        first = True
        while not self._stop.is_set():
            if not leadership.acquire(self._stop, first=first):
                break
            first = False
            server = self._serve_as_primary(url, leadership)
            leadership.release()
            if server is None or server.lost:
                # Step back before contending again, so that a standby already waiting wins
                # the lock rather than the broker that just lost it (it polls every 0.25 s).
                log.warning("broker.standing_by", reason="lost the leadership lock",
                            retry_in_s=STEP_BACK_S)
                self._stop.wait(STEP_BACK_S)

    def _serve_as_primary(self, url: str, leadership: Leadership) -> BrokerServer | None:
        """Take the lead (bump the generation), load the state and serve until stopped or
        the lead is lost; None if the lead was lost before serving (the database went
        away, a standby ended this broker's sessions)."""
        import psycopg

        from zjobs.broker.stores.pgstore import PostgresStore

        try:
            store = PostgresStore(url, name=leadership.name,
                                  lease_ttl_s=self.config.lease_ttl_s)
        except (StartError, psycopg.Error) as exc:
            log.error("broker.takeover_failed", error=str(exc).strip().splitlines()[-1])
            return None
        try:
            store.take_lead()
            server = BrokerServer(self.config, store=store, takeover=True)
        except psycopg.Error as exc:
            store.close()
            log.error("broker.takeover_failed", error=str(exc).strip().splitlines()[-1])
            return None
        except StartError:  # a port taken: this host's problem; exit and let a standby lead
            store.close()
            leadership.release()
            raise
        self._server = server
        leadership.watch(server.lose)
        if self._stop.is_set():
            server.stop()
        server.run()
        self._server = None
        return server
