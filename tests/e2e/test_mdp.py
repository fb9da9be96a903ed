"""`zjobs broker --mdp`: majortomo's own Client and Worker, unchanged, through zjobs."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from majortomo import Client

from tests.api.server import start_api
from tests.cluster import ROOT, Cluster
from tests.waiting import free_port, wait_until
from zjobs.broker.bridges.majordomo import CLIENT, FINAL, REQUEST

SERVICE = "echo"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    mdp = f"tcp://127.0.0.1:{free_port()}"
    cluster = Cluster(tmp_path, broker_args=["--mdp", mdp])
    cluster.mdp = mdp  # type: ignore[attr-defined]
    try:
        cluster.start_broker()
        yield cluster
    finally:
        cluster.close()


def _mdp_worker(cluster: Cluster, name: str, hold: Path | None = None, *,
                stall: bool = False) -> subprocess.Popen:
    """A Majordomo worker process (tests/mdp_peers.py): an echo, or one that takes a request
    and never answers it (`hold`: written there), silent, or heartbeating with `stall`."""
    log = open(cluster.logs / f"mdp-{name}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "tests.mdp_peers", cluster.mdp, SERVICE,
                             *([str(hold)] if hold else []), *(["stall"] if stall else [])],
                            cwd=ROOT, env=cluster.env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    cluster.procs.append(proc)  # stopped with the cluster
    return proc


class _Clients:
    """Raw MDP/0.2 client sockets, one identity each, that may all send before any reply."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.ctx = zmq.Context()
        self.socks: list[zmq.Socket] = []

    def new(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # nothing is queued before the connection is up
        sock.connect(self.endpoint)
        self.socks.append(sock)
        return sock

    def request(self, service: bytes, *frames: bytes) -> zmq.Socket:
        """A new client that sends one request once it is connected (so that requests sent
        before the workers join are at the broker in the order they were sent)."""
        sock = self.new()
        message = [b"", CLIENT, REQUEST, service, *frames]
        wait_until(lambda: _sent(sock, message), 10, message="a client to connect")
        return sock

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def _sent(sock: zmq.Socket, message: list[bytes]) -> bool:
    try:
        sock.send_multipart(message, zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


@pytest.fixture
def clients(cluster: Cluster) -> Iterator[_Clients]:
    made = _Clients(cluster.mdp)  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        made.close()


def _reply(sock: zmq.Socket, timeout: float = 30) -> list[list[bytes]]:
    """The parts of one reply, up to its FINAL: each part's frames after the command."""
    parts: list[list[bytes]] = []
    command = b""
    while command != FINAL:
        if not sock.poll(timeout * 1000):
            raise AssertionError(f"no reply part in {timeout} s (got {parts})")
        empty, header, command, *frames = sock.recv_multipart()
        assert (empty, header) == (b"", CLIENT)
        parts.append(frames)
    return parts


def _jobs(cluster: Cluster, **filters: Any) -> list[dict[str, Any]]:
    with cluster.client() as client:
        return client.list(queue=SERVICE, limit=1000, **filters)


def _counter(cluster: Cluster, name: str) -> int:
    with cluster.client() as client:
        return client.stats()["counters"][name]


def _workers_seen(cluster: Cluster) -> list[dict[str, Any]]:
    with cluster.client() as client:
        return client.workers()


def _request(cluster: Cluster, service: str, *frames: bytes, timeout: float = 30
             ) -> list[list[bytes]]:
    with Client(cluster.mdp) as client:
        client.send(service.encode(), *frames)
        return list(client.recv_all(timeout=timeout))


def test_a_majortomo_request_is_a_job_served_by_a_majortomo_worker(cluster: Cluster) -> None:
    _mdp_worker(cluster, "a")
    parts = _request(cluster, SERVICE, b"hello", b"world")
    assert parts == [[b"working"], [b"echo", b"hello", b"world"]]
    with cluster.client() as client:
        [job] = client.list(queue=SERVICE)
    assert (job["status"], job["task"], job["args"]) == ("succeeded", SERVICE,
                                                         [b"hello", b"world"])
    assert job["result"] == [b"echo", b"hello", b"world"]
    assert job["worker"].startswith(f"mdp-{SERVICE}-")
    api = start_api(cluster)
    with api.client() as http:
        listed = http.get("/jobs", params={"queue": SERVICE}).json()["jobs"]
        logs = http.get(f"/jobs/{job['id']}/logs").text
    assert [j["id"] for j in listed] == [job["id"]]
    assert "working" in logs  # the PARTIAL reply is the job's log line


def test_mmi_service_discovery(cluster: Cluster) -> None:
    assert _request(cluster, "mmi.service", SERVICE.encode()) == [[b"404"]]
    _mdp_worker(cluster, "a")
    wait_until(lambda: _request(cluster, "mmi.service", SERVICE.encode()) == [[b"200"]], 15,
               message="mmi.service to see the worker")
    assert _request(cluster, "mmi.nothing") == [[b"501"]]


def test_a_worker_that_dies_mid_request_has_the_job_run_by_another(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    held = tmp_path / "held"
    doomed = _mdp_worker(cluster, "doomed", hold=held)
    with Client(cluster.mdp) as client:
        client.send(SERVICE.encode(), b"once")
        wait_until(held.exists, 20, message="the first worker to take the request")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        _mdp_worker(cluster, "b")
        parts = list(client.recv_all(timeout=40))
    assert parts[-1] == [b"echo", b"once"]
    with cluster.client() as zj:
        [job] = zj.list(queue=SERVICE)
    assert job["status"] == "succeeded" and job["attempts"] == 2  # requeued once, answered once


def test_a_broker_restart_between_request_and_reply_loses_nothing(cluster: Cluster) -> None:
    with Client(cluster.mdp) as client:
        client.send(SERVICE.encode(), b"durable")  # no worker yet: the job waits, stored
        with cluster.client() as zj:
            wait_until(lambda: zj.list(queue=SERVICE), 15, message="the request's job")
    cluster.kill(cluster.broker)
    cluster.start_broker()
    _mdp_worker(cluster, "after")
    with cluster.client() as zj:
        [job] = zj.list(queue=SERVICE)
        done = zj.wait(job["id"], timeout=40)
    assert done["status"] == "succeeded" and done["result"] == [b"echo", b"durable"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=12), min_size=0, max_size=7))
def test_hostile_frames_on_the_mdp_socket_are_dropped(cluster: Cluster,
                                                      frames: list[bytes]) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(cluster.mdp)
    try:
        for prefix in ([], [b""], [b"", b"MDPC02"], [b"", b"MDPW02"],
                       [b"", b"MDPW02", bytes([3])], [b"", b"MDPC02", bytes([2])]):
            sock.send_multipart(prefix + frames if prefix or frames else [b""])
    finally:
        sock.close()
    assert cluster.broker.poll() is None
    assert _request(cluster, "mmi.nothing", timeout=10) == [[b"501"]]  # still serving


def test_many_clients_at_once_each_get_their_own_reply_and_garbage_is_counted(
        cluster: Cluster, clients: _Clients) -> None:
    malformed = _counter(cluster, "malformed")
    socks = [clients.request(SERVICE.encode(), f"req-{i}".encode(), bytes([i])) for i in range(60)]
    for garbage in ([b"", b"MDPC02"], [b"", CLIENT, REQUEST], [b"", CLIENT, REQUEST, b"\xff"],
                    [b"", b"MDPX99", REQUEST, b"echo"], [b"not empty", CLIENT, REQUEST, b"echo"]):
        clients.new().send_multipart(garbage)  # mixed in with the requests, dropped and counted
    _mdp_worker(cluster, "a")
    _mdp_worker(cluster, "b")
    for i, sock in enumerate(socks):
        assert _reply(sock) == [[b"working"], [b"echo", f"req-{i}".encode(), bytes([i])]]
    wait_until(lambda: _counter(cluster, "malformed") == malformed + 5, 10,
               message="the five malformed messages counted")
    jobs = _jobs(cluster)
    assert len(jobs) == 60 and {(j["status"], j["attempts"]) for j in jobs} == {("succeeded", 1)}
    assert sorted(j["args"][0] for j in jobs) == sorted(f"req-{i}".encode() for i in range(60))
    assert {j["worker"] for j in jobs} <= {w["name"] for w in _workers_seen(cluster)}


def test_a_refused_request_fails_alone_and_the_others_run(cluster: Cluster,
                                                          clients: _Clients) -> None:
    good = [clients.request(SERVICE.encode(), f"ok-{i}".encode()) for i in range(10)]
    bad = clients.request(b"s" * 300, b"no queue has this name")  # over the queue name limit
    _mdp_worker(cluster, "a")
    [[refused]] = _reply(bad)
    assert refused.startswith(b"error: bad_request: ") and b"queue" in refused, refused
    for i, sock in enumerate(good):
        assert _reply(sock)[-1] == [b"echo", f"ok-{i}".encode()]
    assert len(_jobs(cluster, status="succeeded")) == 10


def test_a_cancelled_request_gets_its_error_as_final_and_the_others_run(
        cluster: Cluster, clients: _Clients, tmp_path: Path) -> None:
    held = tmp_path / "held"
    socks = {f"r{i}".encode(): clients.request(SERVICE.encode(), f"r{i}".encode())
             for i in range(6)}
    _mdp_worker(cluster, "holder", hold=held)
    body = wait_until(lambda: held.exists() and held.read_bytes(), 20,
                      message="a worker to take a request")
    [job] = [j for j in _jobs(cluster) if j["args"] == [body]]
    with cluster.client() as client:
        client.cancel(job["id"])
    assert _reply(socks.pop(body)) == [[b"error: Cancelled: cancelled by request"]]
    _mdp_worker(cluster, "b")  # the holder answers nothing more: this one runs the rest
    for body, sock in socks.items():
        assert _reply(sock)[-1] == [b"echo", body]
    assert len(_jobs(cluster, status="succeeded")) == 5


def test_a_worker_lost_mid_batch_has_only_its_request_run_again(
        cluster: Cluster, tmp_path: Path) -> None:
    held = tmp_path / "held"
    doomed = _mdp_worker(cluster, "doomed", hold=held)
    _mdp_worker(cluster, "b")
    with cluster.client() as zj:
        wait_until(lambda: len(zj.workers()) == 2, 20, message="both Majordomo workers")
    made = _Clients(cluster.mdp)  # type: ignore[attr-defined]
    try:
        socks = {f"m{i}".encode(): made.request(SERVICE.encode(), f"m{i}".encode())
                 for i in range(20)}
        body = wait_until(lambda: held.exists() and held.read_bytes(), 20,
                          message="the doomed worker to take a request")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        for body_, sock in socks.items():
            assert _reply(sock, timeout=40)[-1] == [b"echo", body_]
    finally:
        made.close()
    jobs = _jobs(cluster)
    assert {j["status"] for j in jobs} == {"succeeded"} and len(jobs) == 20
    assert {j["args"][0]: j["attempts"] for j in jobs if j["attempts"] != 1} == {body: 2}


def test_a_long_request_does_not_hold_the_requests_behind_it(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    held = tmp_path / "held"
    _mdp_worker(cluster, "busy", hold=held, stall=True)  # alive, on one request for ever
    made = _Clients(cluster.mdp)  # type: ignore[attr-defined]
    try:
        made.request(SERVICE.encode(), b"long")
        wait_until(held.exists, 20, message="the busy worker to take the long request")
        _mdp_worker(cluster, "b")
        with cluster.client() as zj:
            wait_until(lambda: len(zj.workers()) == 2, 20, message="the second worker")
        short = [made.request(SERVICE.encode(), f"s{i}".encode()) for i in range(8)]
        for i, sock in enumerate(short):  # none waits behind the long one on its worker
            assert _reply(sock)[-1] == [b"echo", f"s{i}".encode()]
    finally:
        made.close()
    jobs = {j["args"][0]: j for j in _jobs(cluster)}
    assert jobs.pop(b"long")["status"] == "running"
    assert {(j["status"], j["attempts"]) for j in jobs.values()} == {("succeeded", 1)}
