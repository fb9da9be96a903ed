"""The bus end to end: real broker and worker processes, real sockets."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import zmq

from tests.cluster import Cluster
from tests.waiting import wait_running, wait_until
from zjobs.broker.wire import protocol as p


def test_ten_thousand_jobs_in_batches_all_complete(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    client = cluster.client(timeout=30)
    ids = client.submit_many({"task": "add", "args": [i, 1]} for i in range(10_000))
    assert len(set(ids)) == 10_000
    jobs = client.wait_many(ids, timeout=120)
    assert [j["status"] for j in jobs] == ["succeeded"] * 10_000
    assert [j["result"] for j in jobs] == [i + 1 for i in range(10_000)]
    assert {j["worker"] for j in jobs} == {"w1", "w2"}


def test_worker_killed_mid_job_is_requeued_and_finished_elsewhere(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    victim = cluster.start_worker("victim", "--concurrency", "1")
    client = cluster.client()
    started, release = tmp_path / "started", tmp_path / "release"
    job_id = client.submit("touch_then_wait", str(started), str(release))
    wait_until(started.exists, 20, message="the job to start on the victim")
    assert wait_running(client, job_id)["worker"] == "victim"
    cluster.kill(victim, signal.SIGKILL)
    release.write_text("done")
    cluster.start_worker("rescuer")
    job = client.wait(job_id, timeout=30)
    assert job["status"] == "succeeded"
    assert job["worker"] == "rescuer"
    assert job["attempts"] == 2


def test_broker_killed_and_restarted_finishes_every_acknowledged_job(cluster: Cluster) -> None:
    client = cluster.client(timeout=30)
    ids = client.submit_many({"task": "noop", "args": [i]} for i in range(3000))
    cluster.kill(cluster.broker, signal.SIGKILL)
    cluster.start_broker()
    cluster.start_worker("w1")
    jobs = cluster.client(timeout=30).wait_many(ids, timeout=120)
    assert [j["result"] for j in jobs] == list(range(3000))


def test_worker_reregisters_after_broker_restart(cluster: Cluster) -> None:
    worker = cluster.start_worker("steady")
    cluster.kill(cluster.broker, signal.SIGKILL)
    cluster.start_broker()
    cluster.wait_for_worker("steady", timeout=30)
    assert worker.poll() is None, "the worker was not restarted"
    assert cluster.client().result(cluster.client().submit("add", 40, 2), timeout=20) == 42


def test_seq_continues_across_broker_restart(cluster: Cluster) -> None:
    client = cluster.client()
    client.submit_many({"task": "noop"} for _ in range(5))
    before = client.ping()["seq"]
    cluster.kill(cluster.broker, signal.SIGKILL)
    cluster.start_broker()
    after = cluster.client().ping()["seq"]
    assert after >= before >= 5


def test_heartbeat_loss_detected_within_interval_times_liveness(cluster: Cluster) -> None:
    worker = cluster.start_worker("frozen")
    client = cluster.client()
    since = client.ping()["seq"]
    stopped_at = time.time()
    os.kill(worker.pid, signal.SIGSTOP)  # alive but silent
    try:
        events = client.events(types=("worker.",), since=since)
        lost = next(e for e in events if e["type"] == "worker.lost")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    limit = cluster.heartbeat_interval * cluster.heartbeat_liveness
    assert lost["worker"] == "frozen"
    assert lost["ts"] - stopped_at < limit + 0.5


def test_queues_are_kept_apart(cluster: Cluster) -> None:
    cluster.start_worker("other-only", "--queues", "other")
    cluster.start_worker("default-only", "--queues", "default")
    client = cluster.client()
    ids = client.submit_many([{"task": "noop", "queue": q} for q in ["default", "other"] * 20])
    jobs = client.wait_many(ids, timeout=30)
    for job in jobs:
        expected = "other-only" if job["queue"] == "other" else "default-only"
        assert job["worker"] == expected


def test_higher_priority_starts_first(cluster: Cluster) -> None:
    client = cluster.client()
    low = client.submit_many([{"task": "noop", "args": [i], "priority": 0} for i in range(5)])
    high = client.submit_many([{"task": "noop", "args": [i], "priority": 9} for i in range(5)])
    cluster.start_worker("single", "--concurrency", "1")
    jobs = {j["id"]: j for j in client.wait_many(low + high, timeout=30)}
    last_high = max(jobs[i]["started_at"] for i in high)
    first_low = min(jobs[i]["started_at"] for i in low)
    assert last_high <= first_low
    assert sorted(high, key=lambda i: jobs[i]["started_at"]) == high  # FIFO within a priority


def test_delayed_job_never_starts_before_run_at(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    run_at = time.time() + 1.5
    job_id = client.submit("noop", 1, run_at=run_at)
    assert client.get(job_id)["status"] == "scheduled"
    job = client.wait(job_id, timeout=20)
    assert job["status"] == "succeeded"
    assert job["started_at"] >= run_at


def test_unknown_task_waits_unserved_until_a_worker_has_it(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    job_id = client.submit("echo", 1)  # a demo task: not in tests.tasks
    wait_until(lambda: client.stats()["queues"]["default"]["unserved"] == 1, 10,
               message="the job counted as unserved")
    assert (client.get(job_id)["status"], client.get(job_id)["attempts"]) == ("queued", 0)
    cluster.start_worker("demo", "--tasks", "zjobs.worker.demo")
    assert client.result(job_id, timeout=20) == 1
    assert client.get(job_id)["worker"] == "demo"


def test_progress_and_logs_are_kept_with_the_job(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    job_id = client.submit("chatty", 5)
    assert client.result(job_id, timeout=20) == 5
    lines = client.logs(job_id)
    assert [(line["line"], line["data"]) for line in lines] == [
        (i, f"line {i}") for i in range(1, 6)]
    assert client.get(job_id)["progress"] == {"fraction": 1.0, "message": "5/5"}


def test_events_have_contiguous_seq_and_replay_fills_gaps(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    since = client.ping()["seq"]
    ids = client.submit_many({"task": "noop"} for _ in range(50))
    client.wait_many(ids, timeout=20)
    page = client.replay(since)
    seqs = [e["seq"] for e in page["events"]]
    assert seqs == list(range(since + 1, since + 1 + len(seqs)))
    kinds = {e["type"] for e in page["events"]}
    assert {"job.submitted", "job.started", "job.succeeded"} <= kinds
    assert not page["truncated"]


def test_garbage_on_both_routers_never_stops_the_broker(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    ctx = zmq.Context.instance()
    rng = __import__("random").Random(7)
    garbage = [
        lambda: [os.urandom(rng.randint(0, 64)) for _ in range(rng.randint(1, 6))],
        lambda: [b"ZJC1", p.SUBMIT, b"r", b"\xc1\xc1"],
        lambda: [b"ZJC1", p.SUBMIT, b"r", p.pack({"jobs": [{"task": 5}]})],
        lambda: [b"ZJC1", p.SUBMIT, b"r", p.pack({"jobs": "no"})],
        lambda: [b"ZJC1", p.GET, b"r", p.pack({"id": 12})],
        lambda: [b"ZJC1", p.WAIT, b"r", p.pack({"ids": [None]})],
        lambda: [b"ZJC1", p.EVENTS, b"r", p.pack({"since": "x"})],
        lambda: [b"ZJC1", p.SUBMIT, b"r", p.pack({"task": "x", "run_at": "not a date"})],
        lambda: [b"ZJW1", p.RESULT, b"\x81\xa1"],
        lambda: [b"ZJW1", p.READY, p.pack({"name": 5, "queues": 3, "capacity": "x"})],
        lambda: [b"ZJW1", p.RESULT, p.pack({"job_id": "ghost", "attempt": 1, "ok": True})],
        lambda: [b"ZJW1", p.LOG, p.pack({"job_id": "ghost", "attempt": 1, "stream": "x",
                                         "data": "y"})],
        lambda: [b"ZJW1", p.PROGRESS, p.pack({"job_id": "g", "fraction": "half"})],
        lambda: [b"ZJC1", p.SUBMIT, b"big", b"\x00" * (17 * 1024 * 1024)],
    ]
    sockets = []
    for endpoint in (cluster.frontend, cluster.backend):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        sockets.append(sock)
    try:
        for i in range(3000):
            sockets[i % 2].send_multipart(garbage[i % len(garbage)]())
        client = cluster.client()
        stats = wait_until(lambda: _malformed(client) > 1000, 30, message="garbage counted")
        assert stats
        assert client.result(client.submit("add", 2, 3), timeout=20) == 5
    finally:
        for sock in sockets:
            sock.close(linger=0)
    assert cluster.broker.poll() is None


def _malformed(client) -> int:
    counters = client.stats()["counters"]
    return counters["malformed"] + counters["too_large"]


def test_garbage_sender_is_told_why(cluster: Cluster) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cluster.frontend)
    try:
        sock.send_multipart([b"ZJC1", b"NOPE", b"rid-1", b""])
        assert sock.poll(5000)
        reply = p.decode_reply(sock.recv_multipart())
        assert (reply.ok, reply.request_id, reply.body["code"]) == (False, b"rid-1", "bad_request")
        sock.send_multipart([b"ZJC1", p.SUBMIT, b"rid-2", b"\x00" * (17 * 1024 * 1024)])
        assert sock.poll(10000)
        reply = p.decode_reply(sock.recv_multipart())
        assert reply.body["code"] == "too_large"
    finally:
        sock.close(linger=0)
