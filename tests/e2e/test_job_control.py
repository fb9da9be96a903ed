"""Retries, timeouts, cancellation, idempotency, late results, retention: real processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.waiting import wait_running, wait_until
from zjobs import BrokerError, Client, JobCancelled, JobFailed


def test_fails_twice_then_succeeds(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    job_id = client.submit("flaky", str(tmp_path / "n"), 2, max_retries=2, retry_backoff_s=0.05)
    assert client.result(job_id, timeout=30) == 3
    job = client.get(job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 3)


def test_retries_exhausted_then_rerun(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    since = client.ping()["seq"]
    job_id = client.submit("flaky", str(tmp_path / "n"), 2, max_retries=1, retry_backoff_s=0.05)
    with pytest.raises(JobFailed) as caught:
        client.result(job_id, timeout=30)
    assert caught.value.error["message"] == "failure 2"
    assert "Traceback" in caught.value.error["traceback"]
    retrying = [e for e in client.replay(since)["events"]
                if e["type"] == "job.retrying" and e["job_id"] == job_id]
    assert len(retrying) == 1 and retrying[0]["error"]["message"] == "failure 1"
    assert retrying[0]["next_attempt_at"] > retrying[0]["ts"] - 1
    assert job_id in [j["id"] for j in client.dead_letters()]
    client.retry(job_id)
    assert client.result(job_id, timeout=30) == 3
    assert client.get(job_id)["attempts"] == 3


def test_task_can_ask_for_a_retry(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    job_id = client.submit("retry_me", str(tmp_path / "n"), max_retries=1)
    assert client.result(job_id, timeout=30) == 2


def test_async_timeout(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    started = time.monotonic()
    with pytest.raises(JobFailed) as caught:
        client.result(client.submit("async_sleep", 60, timeout_s=1), timeout=20)
    assert caught.value.error["type"] == "Timeout"
    assert time.monotonic() - started < 10


def test_cancel_queued_job(cluster: Cluster) -> None:
    client = cluster.client()
    job_id = client.submit("noop", queue="nowhere")
    assert client.cancel(job_id)["status"] == "cancelled"
    with pytest.raises(JobCancelled):
        client.result(job_id, timeout=5)
    with pytest.raises(BrokerError) as caught:
        client.cancel(job_id)
    assert caught.value.code == "conflict"


def test_idempotency_key_returns_first_id(cluster: Cluster) -> None:
    client = cluster.client()
    first = client.submit("noop", 1, idempotency_key="order-42", queue="nowhere")
    second = client.submit("noop", 2, idempotency_key="order-42", queue="nowhere")
    assert first == second
    assert client.get(first)["args"] == [1]


def test_late_result_from_lost_worker_is_dropped(cluster: Cluster, tmp_path: Path) -> None:
    frozen = cluster.start_worker("frozen", "--concurrency", "1")
    client = cluster.client()
    started, release = tmp_path / "started", tmp_path / "release"
    job_id = client.submit("touch_then_wait", str(started), str(release))
    wait_until(started.exists, 20, message="job start on the frozen worker")
    wait_running(client, job_id)
    since = client.ping()["seq"]
    os.killpg(frozen.pid, signal.SIGSTOP)  # the worker and its slots: a stalled host
    try:
        events = client.events(types=("worker.",), since=since)
        next(e for e in events if e["type"] == "worker.lost")
        release.write_text("go")
        cluster.start_worker("rescuer", "--concurrency", "1")
        done = client.wait(job_id, timeout=20)
        assert (done["status"], done["worker"], done["attempts"]) == ("succeeded", "rescuer", 2)
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    wait_until(lambda: _late_counted(client), 20, message="the late result to be dropped")
    assert client.get(job_id) == done


def _late_counted(client: Client) -> bool:
    counters = client.stats()["counters"]
    return counters["dropped_results"] + counters["unknown_worker_messages"] > 0


def test_retention_purges_finished_jobs_and_keeps_the_rest(bare_cluster: Cluster) -> None:
    bare_cluster.broker_args = ["--retention", "1", "--purge-interval", "0.2"]
    bare_cluster.start_broker()
    bare_cluster.start_worker("w1")
    client = bare_cluster.client()
    done = client.submit("chatty", 3)
    client.result(done, timeout=20)
    waiting = client.submit("noop", queue="nowhere")
    wait_until(lambda: _missing(client, done), 20, message="the finished job to be purged")
    assert client.stats()["counters"]["purged"] >= 1
    assert client.logs(waiting) == []
    assert client.get(waiting)["status"] == "queued"


def _missing(client: Client, job_id: str) -> bool:
    try:
        client.get(job_id)
    except BrokerError as exc:
        return exc.code == "not_found"
    return False


def test_wait_raises_timeout_while_poll_returns_the_pending_job(cluster: Cluster) -> None:
    client = cluster.client()
    job_id = client.submit("noop", queue="nowhere")
    with pytest.raises(TimeoutError):
        client.wait(job_id, timeout=0.3)
    with pytest.raises(TimeoutError):
        client.result(job_id, timeout=0.3)
    assert client.poll(job_id, timeout=0.3)["status"] == "queued"


def test_retry_all_reruns_every_ended_job_that_matches_page_by_page(cluster: Cluster) -> None:
    client = cluster.client()
    # 1,001 cancelled jobs in a queue no worker serves: more than one RETRY_MANY page
    held = client.submit_many([{"task": "noop", "queue": "held"} for _ in range(1001)])
    other = client.submit("noop", queue="elsewhere")
    client.cancel(other)
    assert client.purge("held") == 1001
    assert client.retry_all("cancelled", queue="held") == 1001
    assert {j["status"] for j in client.wait_many(held, timeout=0)} == {"queued"}
    assert client.get(other)["status"] == "cancelled"  # another queue: left alone
    assert client.retry_all("cancelled", queue="held") == 0  # nothing left to re-run

    cluster.start_worker("w1")
    failing = client.submit_many([{"task": "add", "args": ["a", 1]} for _ in range(3)])
    assert {j["status"] for j in client.wait_many(failing, timeout=30)} == {"failed"}
    assert client.retry_all() == 3  # failed, every queue
    again = client.wait_many(failing, timeout=30)
    assert [(j["status"], j["attempts"]) for j in again] == [("failed", 2)] * 3
    with pytest.raises(BrokerError) as refused:
        client.retry_all("succeeded")
    assert refused.value.code == "bad_request"


def test_run_is_submit_and_result_in_one_round_trip(cluster: Cluster,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    submitted = client.stats()["counters"]["submitted"]
    assert client.run("add", 1, 2) == 3
    with pytest.raises(JobFailed):
        client.run("add", "a", 1)
    with pytest.raises(TimeoutError):
        client.run("sleep", 2, timeout=0.2)  # the job goes on: only the wait ended
    assert client.stats()["counters"]["submitted"] == submitted + 3
    # a job that outlasts the SUBMIT's own wait is waited for with WAIT
    monkeypatch.setattr("zjobs.broker.client.plans.RUN_FIRST_WAIT_S", 0.1)
    assert client.run("sleep", 0.5, timeout=30) == 0.5
    # an idempotent repeat of an ended job answers at once with its result
    assert client.run("add", 2, 2, idempotency_key="once") == 4
    assert client.run("add", 9, 9, idempotency_key="once") == 4


def test_a_batch_submit_with_wait_answers_the_ended_jobs(cluster: Cluster) -> None:
    import msgpack
    import zmq

    from zjobs.broker.wire import protocol as p

    cluster.start_worker("w1")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cluster.frontend)
    try:
        jobs = [{"task": "add", "args": [i, i]} for i in range(3)]
        sock.send_multipart([p.CLIENT_HEADER, p.SUBMIT, b"r1",
                             msgpack.packb({"jobs": jobs, "wait": 30})])
        assert sock.poll(30_000)
        reply = p.decode_reply(sock.recv_multipart())
        assert reply.ok
        assert [(j["status"], j["result"]) for j in reply.body["jobs"]] == \
            [("succeeded", 0), ("succeeded", 2), ("succeeded", 4)]
    finally:
        sock.close(linger=0)
