"""Two brokers on one private PostgreSQL: one primary, one standby that takes over.

Workers and the client list both brokers' endpoints and follow whichever is
primary; the database's advisory lock decides which one that is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from broker import BrokerUnreachable, Client
from tests.cluster import Cluster
from tests.postgres import PostgresServer, started_postgres
from tests.waiting import free_port, wait_until


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    yield from started_postgres()


class Pair(Cluster):
    """A Cluster whose broker is two brokers, A and B, on one PostgreSQL store."""

    def __init__(self, data_dir: Path, url: str) -> None:
        super().__init__(data_dir)
        self.url = url
        self.ends = {name: {role: f"tcp://127.0.0.1:{free_port()}"
                            for role in ("frontend", "backend", "events")} for name in "AB"}
        self.frontend = ",".join(self.ends[n]["frontend"] for n in "AB")
        self.backend = ",".join(self.ends[n]["backend"] for n in "AB")
        self.events = ",".join(self.ends[n]["events"] for n in "AB")
        self.brokers: dict[str, object] = {}

    def start_one(self, name: str) -> object:
        env = {**self.env(), "ZJOBS_STORE": self.url,
               **{f"ZJOBS_{role.upper()}": end for role, end in self.ends[name].items()}}
        self.brokers[name] = self.spawn(["broker"], f"broker-{name}", env=env)
        return self.brokers[name]

    def start_primary_and_standby(self) -> None:
        """A first, until it serves; then B, until it stands by."""
        self.start_one("A")
        wait_until(lambda: self.serves("A"), 30, message="broker A to become primary")
        self.start_one("B")
        wait_until(lambda: "broker.standby" in self.log_text("broker-B"), 30,
                   message="broker B to stand by")

    def only(self, name: str, timeout: float = 2.0) -> Client:
        client = Client(self.ends[name]["frontend"], timeout=timeout)
        self._clients.append(client)
        return client

    def serves(self, name: str) -> bool:
        try:
            return bool(self.only(name, timeout=0.5).ping())
        except TimeoutError:
            return False


@pytest.fixture
def pair(tmp_path: Path, postgres: PostgresServer) -> Iterator[Pair]:
    cluster = Pair(tmp_path, postgres.url)
    try:
        yield cluster
    finally:
        cluster.close()


def _lock_holder(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                           ).fetchone()
    return row[0]


def test_the_standby_takes_over_and_nothing_acknowledged_is_lost(pair: Pair) -> None:
    pair.start_primary_and_standby()
    with pytest.raises(BrokerUnreachable):  # a standby serves nothing: no submit gets in
        pair.only("B", timeout=1.0).submit("add", 1, 1)
    pair.start_worker("w1")
    pair.start_worker("w2")
    client = pair.client(timeout=20)
    first = client.submit_many({"task": "add", "args": [i, i]} for i in range(300))
    pair.kill(pair.brokers["A"])                       # kill -9 of the primary
    second = client.submit_many({"task": "add", "args": [i, 1]} for i in range(300))
    jobs = client.wait_many(first + second, timeout=90)
    assert [j["status"] for j in jobs] == ["succeeded"] * 600
    assert [j["result"] for j in jobs] == [2 * i for i in range(300)] + [i + 1 for i in
                                                                          range(300)]
    assert pair.serves("B") and not pair.serves("A")


def test_a_primary_whose_session_is_cut_stops_serving_and_never_commits(pair: Pair) -> None:
    pair.start_primary_and_standby()
    pair.start_worker("w1")
    client = pair.client(timeout=20)
    before = client.submit_many({"task": "add", "args": [i, i]} for i in range(50))
    with psycopg.connect(pair.url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (_lock_holder(pair.url),))
    wait_until(lambda: pair.serves("B"), 30, message="broker B to take over")
    wait_until(lambda: not pair.serves("A"), 10, message="broker A to stop serving")
    # seen by its lock watchdog (broker.lost_lead) or by a fenced commit, whichever is first
    assert "lost the leadership lock" in pair.log_text("broker-A")
    after = client.submit_many({"task": "add", "args": [i, 1]} for i in range(50))
    jobs = client.wait_many(before + after, timeout=60)
    assert [j["status"] for j in jobs] == ["succeeded"] * 100
    with psycopg.connect(pair.url, autocommit=True) as conn:
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    assert generation[0] == 2  # B's; A, back as a standby, has not taken the lead again
    # A stands by: when B dies, A takes over in its turn
    pair.kill(pair.brokers["B"])
    wait_until(lambda: pair.serves("A"), 30, message="broker A to take over again")
    assert client.result(client.submit("add", 20, 22), timeout=30) == 42


def test_postgres_unreachable_at_start_is_one_error_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.cluster import ROOT

    url = f"postgresql://zjobs@127.0.0.1:{free_port()}/zjobs"
    done = subprocess.run([sys.executable, "-m", "broker.cli", "broker", "--store", url,
                           "--frontend", f"tcp://127.0.0.1:{free_port()}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert errors[0].startswith(f"error: cannot connect to PostgreSQL at {url}")
