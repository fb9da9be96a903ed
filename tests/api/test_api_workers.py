"""`zjobs api --api-workers N`: N processes on one port, each a whole API with its own hub."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.cluster import Cluster
from tests.waiting import wait_until

from .server import ApiServer, read_until, sse_messages, start_api, wait_for_comment

N_PROCESSES = 2


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    try:
        cluster.start_broker()
        cluster.start_worker("w1")
        yield cluster
    finally:
        cluster.close()


def _api(cluster: Cluster) -> ApiServer:
    return start_api(cluster, env={"ZJOBS_API_WORKERS": str(N_PROCESSES)})


def _pids(server: ApiServer) -> set[int]:
    """The processes that answer /health, each request on a new connection."""
    seen: set[int] = set()

    def both_answered() -> bool:
        seen.add(httpx.get(f"{server.base_url}/health", timeout=5).json()["api"]["pid"])
        return len(seen) == N_PROCESSES

    wait_until(both_answered, 30, message=f"{N_PROCESSES} API processes to answer /health")
    return seen


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_every_process_answers_and_every_stream_gets_every_event(cluster: Cluster) -> None:
    server = _api(cluster)
    pids = _pids(server)
    assert server.proc.pid not in pids  # the parent only holds the socket
    with ExitStack() as stack:
        streams = []
        for _ in range(6):  # spread over both processes by the kernel
            http = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=30))
            response = stack.enter_context(
                http.stream("GET", "/events", params={"types": "job.succeeded"}))
            messages = sse_messages(response.iter_lines())
            wait_for_comment(messages, "live")
            streams.append(messages)
        with cluster.client() as client:
            ids = [client.submit("add", i, 1) for i in range(20)]
            client.wait_many(ids, timeout=30)
        for messages in streams:
            seen = read_until(messages, lambda s: len(s) == len(ids))
            assert sorted(m.data["job_id"] for m in seen) == sorted(ids)
            seqs = [int(m.id) for m in seen]
            assert seqs == sorted(set(seqs))


def test_a_process_that_dies_ends_the_api_with_status_1(cluster: Cluster) -> None:
    server = _api(cluster)
    victim, other = sorted(_pids(server))
    os.kill(victim, signal.SIGKILL)
    assert server.proc.wait(30) == 1  # so a supervisor restarts the API whole
    wait_until(lambda: not _alive(other), 15, message="the other API process to exit")


def test_sigterm_to_the_parent_alone_stops_every_process(cluster: Cluster) -> None:
    server = _api(cluster)
    pids = _pids(server)
    os.kill(server.proc.pid, signal.SIGTERM)  # as `docker stop` does: not the group
    try:
        assert server.proc.wait(30) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("the API did not stop on SIGTERM")
    wait_until(lambda: not any(_alive(p) for p in pids), 15,
               message="every API process to exit")


def test_a_killed_parent_takes_its_processes_with_it(cluster: Cluster) -> None:
    server = _api(cluster)
    pids = _pids(server)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(15)
    wait_until(lambda: not any(_alive(p) for p in pids), 15,
               message="the API processes to exit after their parent was killed")
