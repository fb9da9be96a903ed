"""Two brokers on one private PostgreSQL: one primary, one standby that takes over.

Workers and the client list both brokers' endpoints and follow whichever is
primary; the database's advisory lock decides which one that is, and the
primary's lease replaces one that froze. Whichever way the primary stops
(SIGKILL, SIGSTOP, a cut session, a store that refuses its commits), a client
following the list is answered by the standby within 8 s, and the old primary
commits nothing afterwards.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cluster import Cluster
from tests.postgres import PostgresServer, lock_holder, query, started_postgres
from tests.waiting import free_port, wait_running, wait_until
from zjobs import AuthError, BrokerError, BrokerUnreachable, Client

FAILOVER_S = 8.0


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
        except (TimeoutError, AuthError):  # AuthError: a handshake cut short by a broker
            return False                   # closing its sockets as it stands down


@pytest.fixture
def pair(tmp_path: Path, postgres: PostgresServer) -> Iterator[Pair]:
    cluster = Pair(tmp_path, postgres.url)
    try:
        yield cluster
    finally:
        cluster.close()


def _generation(url: str) -> int:
    return query(url, "SELECT value FROM meta WHERE key = 'generation'")[0][0]


def _submitted(client: Client, queue: str, answered: list[str]) -> bool:
    """One submit through the endpoint list; True (its id in `answered`) if a broker took it."""
    try:
        answered.append(client.submit("add", 1, 1, queue=queue))
        return True
    except (BrokerUnreachable, BrokerError):  # the frozen one, or one that cannot write
        return False


def _stands_by(pair: Pair, name: str, times: int) -> bool:
    """Broker `name` has stood by `times` times (its first wait counts) and serves nothing."""
    return pair.log_text(f"broker-{name}").count("broker.standby") >= times \
        and not pair.serves(name)


def _submit_as_users_do(client: Client, jobs: list[dict]) -> list[str]:
    """A submit sent just as the primary dies can go down with its connection: the client
    says it may have been carried out (`sent`), and the documented answer is to send it
    again with the same idempotency keys, which never makes a second job."""
    for _ in range(3):
        try:
            return client.submit_many(jobs)
        except BrokerUnreachable as exc:
            assert exc.sent, "a submit that was not sent must not be what fails here"
    raise AssertionError("the standby never took the submit")


def test_the_standby_takes_over_and_nothing_acknowledged_is_lost(pair: Pair) -> None:
    pair.start_primary_and_standby()
    with pytest.raises(BrokerUnreachable):  # a standby serves nothing: no submit gets in
        pair.only("B", timeout=1.0).submit("add", 1, 1)
    pair.start_worker("w1")
    pair.start_worker("w2")
    client = pair.client(timeout=10)
    first = client.submit_many({"task": "add", "args": [i, i]} for i in range(300))
    pair.kill(pair.brokers["A"])                       # kill -9 of the primary
    second = _submit_as_users_do(client, [{"task": "add", "args": [i, 1],
                                           "idempotency_key": f"second-{i}"} for i in range(300)])
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
        conn.execute("SELECT pg_terminate_backend(%s)", (lock_holder(pair.url).pid,))
    wait_until(lambda: pair.serves("B"), 30, message="broker B to take over")
    wait_until(lambda: not pair.serves("A"), 10, message="broker A to stop serving")
    # seen by its lock watchdog (broker.lost_lead) or by a fenced commit, whichever is first
    assert "lost the leadership lock" in pair.log_text("broker-A")
    after = client.submit_many({"task": "add", "args": [i, 1]} for i in range(50))
    jobs = client.wait_many(before + after, timeout=60)
    assert [j["status"] for j in jobs] == ["succeeded"] * 100
    assert _generation(pair.url) == 2  # B's; A, back as a standby, has not led again
    # A stands by: when B dies, A takes over in its turn
    pair.kill(pair.brokers["B"])
    wait_until(lambda: pair.serves("A"), 30, message="broker A to take over again")
    assert client.result(client.submit("add", 20, 22), timeout=30) == 42


def test_a_frozen_primary_is_replaced_and_commits_nothing_when_it_resumes(
        pair: Pair, tmp_path: Path) -> None:
    pair.start_primary_and_standby()
    pair.start_worker("w1")
    started, release = tmp_path / "started", tmp_path / "release"
    client = pair.client(timeout=30)
    running = client.submit("touch_then_wait", str(started), str(release))
    wait_until(started.exists, 20, message="a job to run on w1 under A")
    wait_running(client, running)  # A has stored it running on w1
    to_a = pair.only("A", timeout=1.0)
    assert to_a.ping()  # connected before the freeze: its submit will wait in A's socket
    pair.kill(pair.brokers["A"], signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        with pytest.raises(BrokerUnreachable):
            to_a.submit("add", 2, 2, queue="sent-to-frozen-a")
        follower, answered = pair.client(timeout=1.0), []
        wait_until(lambda: _submitted(follower, "while-a-froze", answered), FAILOVER_S,
                   message="the standby to answer a submit")
        assert time.monotonic() - frozen_at < FAILOVER_S
        release.write_text("released")  # the job A gave w1 ends on B: w1 follows with it
        # a client listing both: its heartbeats drop the frozen A, so B gets the read
        assert pair.client(timeout=30).result(running, timeout=30) == "released"
        # What the store holds before A resumes: A, which still has the job running on a
        # worker it has not heard from, would write its requeue, and the submit in its socket.
        before = query(pair.url, "SELECT * FROM jobs ORDER BY id")
    finally:
        pair.kill(pair.brokers["A"], signal.SIGCONT)
    wait_until(lambda: _stands_by(pair, "A", 2), 30, message="A to resume as a standby")
    assert "broker.lost_lead" in pair.log_text("broker-A")
    assert query(pair.url, "SELECT * FROM jobs ORDER BY id") == before
    assert not query(pair.url, "SELECT id FROM jobs WHERE queue = 'sent-to-frozen-a'")
    assert [r[0] for r in query(pair.url, "SELECT id FROM jobs WHERE queue = 'while-a-froze'")
            ] == answered
    assert _generation(pair.url) == 2 and pair.serves("B")


@pytest.mark.parametrize("fault", ["refused", "cut"])
def test_a_primary_that_cannot_write_gives_up_the_lead(pair: Pair, fault: str) -> None:
    pair.start_primary_and_standby()
    store_session = f"{lock_holder(pair.url).broker}-store"
    if fault == "refused":  # the database refuses every commit of A's, and only A's
        query(pair.url, "CREATE FUNCTION refuse_a() RETURNS trigger LANGUAGE plpgsql AS $$ "
                        f"BEGIN IF current_setting('application_name') = '{store_session}' "
                        "THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$")
        query(pair.url, "CREATE TRIGGER refuse_a BEFORE INSERT OR UPDATE ON meta "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_a()")
    else:  # A's store session is gone; its lock session is fine
        query(pair.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s", (store_session,))
    cut_at = time.monotonic()
    follower, answered = pair.client(timeout=1.0), []
    wait_until(lambda: _submitted(follower, "after", answered), FAILOVER_S,
               message="the standby to answer a submit")
    assert time.monotonic() - cut_at < FAILOVER_S
    assert "broker.giving_up_lead" in pair.log_text("broker-A")
    wait_until(lambda: _stands_by(pair, "A", 2), 15, message="A to stand by")
    assert _generation(pair.url) == 2 and pair.serves("B")
    assert [r[0] for r in query(pair.url, "SELECT id FROM jobs WHERE queue = 'after'")
            ] == answered


def test_a_frozen_primary_alone_loses_its_session_and_leads_again_once_resumed(
        pair: Pair) -> None:
    pair.start_one("A")
    wait_until(lambda: pair.serves("A"), 30, message="broker A to become primary")
    pair.kill(pair.brokers["A"], signal.SIGSTOP)
    try:  # the server's idle_session_timeout (2 lease TTLs) ends the frozen lock session
        wait_until(lambda: lock_holder(pair.url) is None, 10, message="the lock to be freed")
    finally:
        pair.kill(pair.brokers["A"], signal.SIGCONT)
    # it may answer a PING in the turn it resumes with, before it sees its lease gone
    wait_until(lambda: "broker.lost_lead" in pair.log_text("broker-A"), 10,
               message="A to see its lease gone")
    wait_until(lambda: _generation(pair.url) == 2, 15, message="A to take the lead again")
    wait_until(lambda: pair.serves("A"), 15, message="A to serve again")


def test_postgres_unreachable_at_start_is_one_error_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.cluster import ROOT

    url = f"postgresql://zjobs@127.0.0.1:{free_port()}/zjobs"
    done = subprocess.run([sys.executable, "-m", "zjobs", "broker", "--store", url,
                           "--frontend", f"tcp://127.0.0.1:{free_port()}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert errors[0].startswith(f"error: cannot connect to PostgreSQL at {url}")
