"""A private PostgreSQL server for tests, started the way users start one: initdb and pg_ctl.

The benchmark's starter (bench/peers/_postgres.py) does it: Debian's binaries,
a free loopback port, a temporary directory, as the `postgres` user when the
tests run as root. Here with fsync off, for speed. scripts/test installs
Debian's `postgresql` when it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.peers._postgres import pg_bin, postgres_server


@dataclass(frozen=True, slots=True)
class PostgresServer:
    url: str


def started_postgres() -> Iterator[PostgresServer]:
    """For a fixture: a started server, stopped afterwards; a clear failure if not installed."""
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/test installs Debian's postgresql")
    with postgres_server(fsync=False) as url:
        yield PostgresServer(url)
