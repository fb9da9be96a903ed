"""Workers that stall, start before the broker, or cannot run a job: real processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import zmq

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import Client
from zjobs.broker.wire import protocol as p


def _runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _runs_on(client: Client, worker: str, job_id: str) -> bool:
    return any(w["name"] == worker and job_id in w["running"] for w in client.workers())


def _buffered(client: Client, worker: str) -> int:
    return sum(w["buffered"] for w in client.workers() if w["name"] == worker)


def _lost(client: Client, since: int, worker: str) -> bool:
    events = client.replay(since, types=("worker.lost",))["events"]
    return any(e["worker"] == worker for e in events)


def test_stalled_worker_keeps_its_job_which_runs_once(cluster: Cluster, tmp_path: Path) -> None:
    worker = cluster.start_worker("stalled", "--concurrency", "1")
    client = cluster.client()
    runs, release = tmp_path / "runs", tmp_path / "release"
    job_id = client.submit("count_then_wait", str(runs), str(release))
    wait_until(lambda: _runs(runs) == 1, 20, message="the job to start")
    since = client.ping()["seq"]
    cluster.kill(worker, signal.SIGSTOP)  # a stalled host: alive, silent
    try:
        wait_until(lambda: _lost(client, since, "stalled"), 20, message="the worker declared lost")
        wait_until(lambda: client.get(job_id)["status"] == "queued", 10,
                   message="its job requeued")
    finally:
        cluster.kill(worker, signal.SIGCONT)
    wait_until(lambda: _runs_on(client, "stalled", job_id), 20,
               message="the worker back, holding its job")
    release.write_text("go")
    job = client.wait(job_id, timeout=30)
    assert (job["status"], job["attempts"], job["worker"]) == ("succeeded", 1, "stalled")
    assert job["result"] == 1 and _runs(runs) == 1


@pytest.mark.parametrize("task", ["count_and_sleep", "async_count"])
def test_a_stalled_worker_starts_none_of_the_jobs_sent_to_it_meanwhile(
        cluster: Cluster, tmp_path: Path, task: str) -> None:
    """Jobs sent to a worker just as it stopped wait in its socket; the broker takes it for
    dead and gives them to another worker. Back, it must not start them as well: it notices
    its own silence, drops what it was sent, and registers again. A plain `def` task runs in
    a sync slot, an `async def` one in the worker process itself: each has the rule."""
    stalled = cluster.start_worker("stalled", "--concurrency", "1")
    client = cluster.client()
    runs = [tmp_path / "a", tmp_path / "b"]
    seconds = [0] if task == "count_and_sleep" else []  # the sync one also sleeps that long
    cluster.kill(stalled, signal.SIGSTOP)
    try:
        ids = client.submit_many({"task": task, "args": [str(path), *seconds]} for path in runs)
        wait_until(lambda: _buffered(client, "stalled") == 2, 5,
                   message="both jobs sent to the stopped worker")
        cluster.start_worker("other", "--concurrency", "1", wait=False)
        jobs = [client.wait(job_id, timeout=30) for job_id in ids]
        assert [job["worker"] for job in jobs] == ["other", "other"]
    finally:
        cluster.kill(stalled, signal.SIGCONT)
    cluster.wait_for_worker("stalled")
    assert [_runs(path) for path in runs] == [1, 1]
    assert [client.get(job_id)["attempts"] for job_id in ids] == [1, 1]


def test_worker_keeps_its_job_across_a_broker_restart(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("steady", "--concurrency", "1")
    client = cluster.client()
    runs, release = tmp_path / "runs", tmp_path / "release"
    job_id = client.submit("count_then_wait", str(runs), str(release))
    wait_until(lambda: _runs(runs) == 1, 20, message="the job to start")
    cluster.kill(cluster.broker, signal.SIGKILL)
    cluster.start_broker()
    client = cluster.client()
    wait_until(lambda: _runs_on(client, "steady", job_id), 30,
               message="the worker re-registered with its job")
    release.write_text("go")
    job = client.wait(job_id, timeout=30)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert _runs(runs) == 1


class _FakeWorker:
    """A bare DEALER speaking ZJP/1 to the backend: lets a test act out a reconnect."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(cluster.backend)
        body = {"name": name, "queues": ["default"], "capacity": 1, "tasks": ["noop"],
                "heartbeat_interval_s": cluster.heartbeat_interval}
        self.sock.send_multipart(p.encode_worker(p.READY, body))

    def receive(self, command: bytes, timeout_s: float) -> p.WorkerMessage | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0 and self.sock.poll(left * 1000):
            msg = p.decode_broker(self.sock.recv_multipart())
            if msg.command == command:
                return msg
        return None

    def close(self) -> None:
        self.sock.close(linger=0)


def test_ready_is_answered_at_once(bare_cluster: Cluster) -> None:
    bare_cluster.heartbeat_interval = 2.0  # a worker's silence clock runs from its connect
    bare_cluster.start_broker()
    worker = _FakeWorker(bare_cluster, "eager")
    try:
        assert worker.receive(p.HEARTBEAT, 1.0) is not None, "READY not acknowledged within 1 s"
    finally:
        worker.close()


def test_worker_that_reconnected_leaves_no_stale_registration(bare_cluster: Cluster) -> None:
    bare_cluster.heartbeat_interval = 2.0  # the broker's next heartbeat would find it late
    bare_cluster.start_broker()
    client = bare_cluster.client()
    gave_up = _FakeWorker(bare_cluster, "w")  # its READY landed, then it gave up on the broker
    [first] = wait_until(client.workers, 10, message="the first registration")
    gave_up.close()
    again = _FakeWorker(bare_cluster, "w")  # the same worker, under a new identity
    try:
        wait_until(lambda: any(w["joined_at"] > first["joined_at"] for w in client.workers()),
                   10, message="the second registration")
        job_id = client.submit("noop")
        job = again.receive(p.JOB, 15.0)
        assert job is not None and job.bodies[0]["id"] == job_id
        assert job.bodies[0]["attempt"] == 1  # no attempt spent on the identity that is gone
        assert client.get(job_id)["attempts"] == 1
        assert [w["name"] for w in client.workers()] == ["w"]
    finally:
        again.close()


def test_jobs_go_only_to_workers_that_can_run_them(cluster: Cluster) -> None:
    cluster.start_worker("tests-tasks")
    cluster.start_worker("demo", "--tasks", "zjobs.worker.demo")
    client = cluster.client()
    mine = client.submit_many({"task": "chatty", "args": [1]} for _ in range(10))
    theirs = client.submit_many({"task": "echo", "args": [i]} for i in range(10))
    assert {j["worker"] for j in client.wait_many(mine, timeout=30)} == {"tests-tasks"}
    assert {j["worker"] for j in client.wait_many(theirs, timeout=30)} == {"demo"}
    program = client.submit_exec("main.py", {"main.py": b"print('ran')"}, timeout_s=30)
    nobody = client.submit("no_such_task")
    wait_until(lambda: client.stats()["queues"]["default"]["unserved"] == 2, 10,
               message="the exec job and the unknown task counted as unserved")
    assert client.get(program)["status"] == "queued" and client.get(program)["attempts"] == 0
    cluster.start_worker("runner", "--allow-exec")
    job = client.wait(program, timeout=30)
    assert (job["status"], job["attempts"], job["worker"]) == ("succeeded", 1, "runner")
    assert client.get(nobody)["status"] == "queued"
    assert client.stats()["queues"]["default"]["unserved"] == 1
