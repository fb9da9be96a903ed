"""The C client, worker and event subscriber of examples/c, built from docs/protocol.md alone,
against a real broker: C submits what Python runs, Python submits what C runs, failures, idle
heartbeats, a broker restart under a running C worker, and the events of it all, batched."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.cluster import ROOT, Cluster
from tests.event_taps import Tap, replayed
from tests.waiting import holds_for, wait_until
from zjobs.broker.wire import protocol as p

SOURCES = ROOT / "examples" / "c"
C_QUEUE = "c"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zjobs_client, zjobs_worker and zjobs_events, built with the examples' Makefile outside
    the repo."""
    missing = [tool for tool in ("make", "cc", "pkg-config") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: scripts/test installs them"
    out = tmp_path_factory.mktemp("c-build")
    build = subprocess.run(["make", "-C", str(SOURCES), f"OUT={out}"], capture_output=True,
                           text=True, timeout=120)
    assert build.returncode == 0, f"the C examples did not build:\n{build.stderr}"
    return out


@pytest.fixture
def c_worker(cluster: Cluster, programs: Path) -> Iterator[subprocess.Popen]:
    log = open(cluster.logs / "c-worker.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(programs / "zjobs_worker"), cluster.backend, "cw", C_QUEUE],
                            env=cluster.env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    try:
        with cluster.client() as client:
            wait_until(lambda: _registered(client), 15, message="the C worker to register")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CEvents:
    """A running zjobs_events: its stdout and stderr in files the test reads."""

    def __init__(self, programs: Path, endpoint: str, files: Path, *prefixes: str) -> None:
        self.out, self.err = files.with_suffix(".out"), files.with_suffix(".err")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([str(programs / "zjobs_events"), endpoint, *prefixes],
                                         stdout=out, stderr=err, start_new_session=True)

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def c_events(cluster: Cluster, programs: Path) -> Iterator[Callable[..., CEvents]]:
    started: list[CEvents] = []

    def start(name: str, *prefixes: str) -> CEvents:
        started.append(CEvents(programs, cluster.events, cluster.logs / name, *prefixes))
        return started[-1]

    try:
        yield start
    finally:
        codes = [subscriber.stop() for subscriber in started]
    assert codes == [0] * len(started)  # SIGTERM ends it cleanly


def _line(event: dict[str, Any]) -> str:
    """What zjobs_events prints for `event`: `SEQ TYPE ID`."""
    return f"{event['seq']} {event['type']} {event.get('job_id') or event.get('worker') or '-'}"


def _after(lines: list[str], since: int, until: int) -> list[str]:
    return [line for line in lines if since < int(line.split()[0]) <= until]


def _registered(client) -> bool:
    return any(w["name"] == "cw" for w in client.workers())


def _c_client(cluster: Cluster, programs: Path, queue: str, task: str, *args: int
              ) -> subprocess.CompletedProcess:
    return subprocess.run([str(programs / "zjobs_client"), cluster.frontend, queue, task,
                           *map(str, args)], capture_output=True, text=True, timeout=60)


def test_the_c_client_submits_jobs_python_workers_run(cluster: Cluster, programs: Path) -> None:
    cluster.start_worker("py1")
    done = _c_client(cluster, programs, "default", "add", 2, 40)
    assert (done.returncode, done.stdout) == (0, "succeeded 42\n"), done.stderr
    with cluster.client() as client:
        jobs = client.list(task="add")
    assert [(j["status"], j["worker"], j["args"]) for j in jobs] == [("succeeded", "py1", [2, 40])]


def test_python_clients_submit_jobs_the_c_worker_runs(cluster: Cluster,
                                                      c_worker: subprocess.Popen) -> None:
    with cluster.client() as client:
        ids = [client.submit("c_add", i, 10, -3, queue=C_QUEUE) for i in range(20)]
        jobs = client.wait_many(ids, timeout=30)
    assert [j["result"] for j in jobs] == [i + 7 for i in range(20)]
    assert {(j["status"], j["worker"]) for j in jobs} == {("succeeded", "cw")}


def test_a_failing_job_is_reported_on_both_sides(cluster: Cluster, programs: Path,
                                                 c_worker: subprocess.Popen) -> None:
    done = _c_client(cluster, programs, C_QUEUE, "c_fail")
    assert (done.returncode, done.stdout) == (1, "failed CError: c_fail always fails\n")
    with cluster.client() as client:
        job = client.wait(client.submit("c_add", "not a number", queue=C_QUEUE), timeout=30)
    assert job["status"] == "failed" and job["error"]["type"] == "TypeError"


def test_an_idle_c_worker_stays_registered_by_its_heartbeats(cluster: Cluster,
                                                            c_worker: subprocess.Popen) -> None:
    window = cluster.heartbeat_interval * cluster.heartbeat_liveness
    with cluster.client() as client:
        holds_for(lambda: _registered(client), 4 * window,
                  message="the idle C worker's registration")
        assert client.wait(client.submit("c_add", 1, queue=C_QUEUE), timeout=30)["result"] == 1
    assert "reconnecting" not in cluster.log_text("c-worker")  # the broker was heard too


def test_the_c_worker_survives_a_broker_restart(cluster: Cluster,
                                                c_worker: subprocess.Popen) -> None:
    with cluster.client() as client:
        before = client.submit("c_add", 1, 1, queue=C_QUEUE)
        assert client.wait(before, timeout=30)["result"] == 2
    cluster.kill(cluster.broker)
    cluster.start_broker()  # same ports, same store
    with cluster.client() as client:
        wait_until(lambda: _registered(client), 30, message="the C worker to register again")
        after = client.submit("c_add", 2, 2, queue=C_QUEUE)
        assert client.wait(after, timeout=30)["result"] == 4
        assert client.get(before)["status"] == "succeeded"  # durable across the restart
    assert c_worker.poll() is None  # the same process all along


def test_the_c_subscriber_prints_batched_events_in_seq_order(
        cluster: Cluster, programs: Path, c_worker: subprocess.Popen,
        c_events: Callable[..., CEvents]) -> None:
    everything, ended = c_events("c-events-all"), c_events("c-events-ended", "job.succeeded")
    tap = Tap(cluster.events, "job.submitted")
    try:
        with cluster.client() as client:
            def connected() -> bool:  # the slow joiner: run jobs until every SUB has heard one
                client.wait(client.submit("c_add", 1, queue=C_QUEUE), timeout=10)
                return bool(everything.lines() and ended.lines() and tap.read())

            wait_until(connected, 20, message="the C subscribers to receive events")
            since = client.ping()["seq"]
            ids = client.submit_many({"task": "c_add", "args": [i, 1], "queue": C_QUEUE}
                                     for i in range(30))
            assert [j["result"] for j in client.wait_many(ids, timeout=60)] == list(
                range(1, 31))
            done = _c_client(cluster, programs, C_QUEUE, "c_add", 2, 40)
            assert (done.returncode, done.stdout) == (0, "succeeded 42\n"), done.stderr
            until = client.ping()["seq"]
            truth = replayed(client, since, until)
        for subscriber, prefix in ((everything, ""), (ended, "job.succeeded")):
            wanted = [_line(e) for e in truth if e["type"].startswith(prefix)]
            count = len(wanted)
            wait_until(lambda s=subscriber, n=count: len(_after(s.lines(), since, until)) >= n,
                       20, message=f"zjobs_events {prefix!r} to print the jobs' events")
            assert _after(subscriber.lines(), since, until) == wanted
        assert [int(line.split()[0]) for line in _after(everything.lines(), since, until)] == (
            list(range(since + 1, until + 1)))  # every seq, once, in order
        tap.read()
        assert [len(frames) for frames in tap.messages if frames[0] == b"job.submitted"
                and len(p.decode_events(frames)) == 30] == [3]  # the 30 went as one batch
    finally:
        tap.close()
    assert everything.err.read_text() == ended.err.read_text() == ""  # no gap, nothing dropped


def test_the_c_subscriber_drops_malformed_messages_and_reports_gaps(
        tmp_path: Path, programs: Path) -> None:
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.linger = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    subscriber = CEvents(programs, f"tcp://127.0.0.1:{port}", tmp_path / "events", "")
    seq = 0

    def event(type_: str, at: int) -> dict[str, Any]:
        return {"seq": at, "ts": 1.0, "type": type_, "job_id": f"j{at}"}

    def probe() -> bool:  # the slow joiner: publish until it prints
        nonlocal seq
        seq += 1
        pub.send_multipart(p.encode_event(event("broker.stats", seq)))
        return bool(subscriber.lines())

    try:
        wait_until(probe, 20, message="zjobs_events to receive from the fake broker")
        start = seq
        batch = [event("log", start + i) for i in (1, 2, 3)]
        for frames in (
            p.encode_event_run(b"log", [p.pack(e) for e in batch]),
            [b"log", p.EVENT_BATCH, p.pack([event("log", start + 4), event("log", start + 6)])],
            [b"log", b"ZJB2", p.pack([event("log", start + 4)])],
            [b"job.started", p.pack(event("log", start + 4))],
            [b"log", b"\xc1"],
            [b"log", p.EVENT_BATCH, b"", b""],
            p.encode_event(event("job.started", start + 4)),
            p.encode_event(event("worker.joined", start + 9)),
        ):
            pub.send_multipart(frames)
        wait_until(lambda: subscriber.lines()[-1:] == [f"{start + 9} worker.joined j{start + 9}"],
                   20, message="zjobs_events to print the last event")
    finally:
        pub.close(linger=0)
        assert subscriber.stop() == 0
    lines = subscriber.lines()
    assert lines[lines.index(f"{start} broker.stats j{start}") + 1:] == [
        f"{start + 1} log j{start + 1}", f"{start + 2} log j{start + 2}",
        f"{start + 3} log j{start + 3}", f"{start + 4} job.started j{start + 4}",
        f"{start + 9} worker.joined j{start + 9}"]
    assert subscriber.err.read_text().splitlines() == [
        "dropped a malformed events message"] * 5 + [
        f"gap: events {start + 5} to {start + 8} were missed (EVENTS replays them)"]
