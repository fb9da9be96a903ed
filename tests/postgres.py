"""A private PostgreSQL server for tests, started the way users start one: initdb and pg_ctl.

On a free port, in a temporary directory, as the `postgres` user when the
tests run as root (PostgreSQL refuses to run as root). Debian's `postgresql`
package provides the binaries; scripts/test installs it when it is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.waiting import free_port, wait_until


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """`start()`, then `url`; `stop()` shuts it down and removes its files."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="zjobs-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://zjobs@127.0.0.1:{self.port}/zjobs"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", "zjobs", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "start")
        wait_until(self._ready, 30, message="PostgreSQL to accept connections")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "zjobs", "zjobs")
        return self

    def _ready(self) -> bool:
        done = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
        return done.returncode == 0

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def started_postgres() -> Iterator[PostgresServer]:
    """For a fixture: a started server, stopped afterwards; a clear failure if not installed."""
    import pytest

    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/test installs Debian's postgresql")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
