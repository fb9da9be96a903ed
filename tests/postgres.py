"""A private PostgreSQL server for tests, started the way users start one: initdb and pg_ctl.

The benchmark's starter (bench/peers/_postgres.py) does it: Debian's binaries,
a free loopback port, a temporary directory, as the `postgres` user when the
tests run as root. Here with fsync off, for speed. scripts/test installs
Debian's `postgresql` when it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from bench.peers._postgres import pg_bin, postgres_server
from zjobs.broker.stores.leadership import LOCK_KEY
from zjobs.broker.stores.lease import Holder, read_holder


@dataclass(frozen=True, slots=True)
class PostgresServer:
    url: str


def started_postgres() -> Iterator[PostgresServer]:
    """For a fixture: a started server, stopped afterwards; a clear failure if not installed."""
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/test installs Debian's postgresql")
    with postgres_server(fsync=False) as url:
        yield PostgresServer(url)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one statement, on a connection of its own (none for a statement without)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def lock_holder(url: str) -> Holder | None:
    """The broker holding the leadership lock (its lock session, its lease), or None."""
    with psycopg.connect(url, autocommit=True) as conn:
        return read_holder(conn, LOCK_KEY)
