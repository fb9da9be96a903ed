"""Sync tasks that opt into the worker's threads (`@task(pool="thread")`), on real processes."""

from __future__ import annotations

import signal

import pytest

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import JobFailed


def test_a_thread_task_runs_in_the_worker_with_its_log_and_progress(cluster: Cluster) -> None:
    worker = cluster.start_worker("w1")
    client = cluster.client()
    job_id = client.submit("in_a_thread", 7)
    value = client.result(job_id, timeout=30)
    assert value["x"] == 7 and value["thread"].startswith("zjobs-task")
    assert value["pid"] == worker.pid  # the worker itself: no pool process, no pipe
    assert [line["data"] for line in client.logs(job_id)] == ["thread got 7"]
    assert client.get(job_id)["progress"] == {"fraction": 0.5, "message": "halfway"}


def test_a_thread_task_past_its_timeout_fails_at_once_and_the_worker_goes_on(
        cluster: Cluster) -> None:
    cluster.start_worker("w1", "--concurrency", "2")
    client = cluster.client()
    stuck = client.submit("thread_sleep", 60, timeout_s=0.5)
    with pytest.raises(JobFailed) as failed:
        client.result(stuck, timeout=20)
    assert failed.value.error["type"] == "Timeout"
    assert client.result(client.submit("in_a_thread", 1), timeout=20)["x"] == 1
    proc = cluster.workers["w1"]
    cluster.kill(proc, signal.SIGTERM)  # a stuck thread must not hold shutdown
    wait_until(lambda: proc.poll() is not None, 20, message="the worker to exit")
