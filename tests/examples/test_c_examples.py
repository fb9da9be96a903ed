"""The C client and worker of examples/c, built from docs/protocol.md alone, against a real
broker: C submits what Python runs, Python submits what C runs, failures, idle heartbeats,
and a broker restart under a running C worker."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import ROOT, Cluster
from tests.waiting import holds_for, wait_until

SOURCES = ROOT / "examples" / "c"
C_QUEUE = "c"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zjobs_client and zjobs_worker, built with the examples' Makefile outside the repo."""
    missing = [tool for tool in ("make", "cc", "pkg-config") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: scripts/test installs them"
    out = tmp_path_factory.mktemp("c-build")
    build = subprocess.run(["make", "-C", str(SOURCES), f"OUT={out}"], capture_output=True,
                           text=True, timeout=120)
    assert build.returncode == 0, f"the C examples did not build:\n{build.stderr}"
    return out


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    try:
        cluster.start_broker()
        yield cluster
    finally:
        cluster.close()


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
