"""A private PostgreSQL server for the PostgreSQL-backed peers (PgQueuer, procrastinate).

Started the way an operator would start one: Debian's ``initdb`` and
``pg_ctl`` (``/usr/lib/postgresql/<version>/bin``, the newest installed), in a
temporary directory, on a free loopback port, as the ``postgres`` user when
the benchmark runs as root (PostgreSQL refuses to run as root).

Durability is PostgreSQL's default, the setting a fair comparison with a
durable zjobs store needs: ``fsync`` on and ``synchronous_commit`` on, so
every committed enqueue and every finished job is flushed to the WAL on disk
before the commit returns. (``initdb --no-sync`` only skips flushing the
freshly created, throw-away cluster files once; it changes no server setting.)

``pg_ctl`` daemonizes the server, so unlike the peers' other processes it
does not die with the benchmark if the benchmark itself is SIGKILLed; on
every normal exit, error or Ctrl-C it is stopped and its directory removed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.peers._common import PeerUnavailable, free_port

PG_TIMEOUT_S = 120
PG_USER = "zjp"
PG_DB = "zjp"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, else the one on PATH, else None."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    versions.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class _Cluster:
    """initdb/pg_ctl/createdb on one temporary data directory."""

    def __init__(self, bindir: Path, root: Path, port: int, fsync: bool = True) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PeerUnavailable("running as root but there is no `postgres` user") from exc
            os.chown(root, user.pw_uid, user.pw_gid)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
        if check and proc.returncode != 0:
            raise PeerUnavailable(
                f"{argv[0]} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}"
                f"{self._log_tail()}"
            )
        return proc

    def _log_tail(self) -> str:
        try:
            return f" (server log: {self.log.read_text(errors='replace')[-400:]})"
        except OSError:
            return ""

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                 "--no-sync")  # fmt: skip
        durable = "on" if self.fsync else "off"  # on for every measurement (the default)
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync={durable} -c synchronous_commit={durable}"
        )
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                 "-w", "-t", "60", "start")  # fmt: skip
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_DB)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop",
                     check=False)  # fmt: skip


@contextmanager
def postgres_server(fsync: bool = True) -> Iterator[str]:
    """A private PostgreSQL on a free loopback port; yields its URL.

    `fsync=False` is for the test suite only (tests/postgres.py), where durability across a
    power cut is not what is tested and speed is welcome; every benchmark keeps it on.
    """
    bindir = pg_bin()
    if bindir is None:
        raise PeerUnavailable("PostgreSQL not found: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="zjobs-peer-pg-"))
    try:
        cluster = _Cluster(bindir, root, free_port(), fsync)
        try:
            cluster.start()
            yield f"postgresql://{PG_USER}@127.0.0.1:{cluster.port}/{PG_DB}"
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
