"""`zjobs broker --mdp`: majortomo's own Client and Worker, unchanged, through zjobs."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from majortomo import Client

from tests.api.server import start_api
from tests.cluster import ROOT, Cluster
from tests.waiting import free_port, wait_until

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


def _mdp_worker(cluster: Cluster, name: str, hold: Path | None = None) -> subprocess.Popen:
    log = open(cluster.logs / f"mdp-{name}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "tests.mdp_peers", cluster.mdp, SERVICE,
                             *([str(hold)] if hold else [])], cwd=ROOT, env=cluster.env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    cluster.procs.append(proc)  # stopped with the cluster
    return proc


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
