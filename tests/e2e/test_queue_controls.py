"""Queue controls on real processes: pause and resume, purge, rate limits, restarts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.waiting import holds_for, wait_running, wait_until
from zjobs import BrokerError, Client


def _statuses(client: Client, ids: list[str]) -> list[str]:
    return [job["status"] for job in client.wait_many(ids, timeout=0)]


def test_a_paused_queue_keeps_its_jobs_until_resumed(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    settings = client.configure_queue("held", paused=True)
    assert settings == {"name": "held", "paused": True, "rate_limit": None}
    ids = [client.submit("noop", i, queue="held") for i in range(4)]
    other = client.submit("noop", "free", queue="default")
    assert client.result(other, timeout=20) == "free"  # the worker is up and serves
    cluster.start_worker("w2", "--queues", "held")
    holds_for(lambda: _statuses(client, ids) == ["queued"] * 4, 1.5,
              message="the paused queue's jobs staying queued")
    assert client.stats()["queues"]["held"]["paused"] is True
    client.configure_queue("held", paused=False)
    assert [job["status"] for job in client.wait_many(ids, timeout=20)] == ["succeeded"] * 4


def test_purge_cancels_the_waiting_jobs_not_the_running_one(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    cluster.start_worker("w1", "--queues", "p", "--concurrency", "1")
    client = cluster.client()
    since = client.ping()["seq"]
    started, release = tmp_path / "started", tmp_path / "release"
    running = client.submit("touch_then_wait", str(started), str(release), queue="p")
    wait_until(started.exists, 20, message="the first job to start")
    wait_running(client, running)
    waiting = [client.submit("noop", i, queue="p") for i in range(3)]
    waiting.append(client.submit("noop", "later", queue="p", run_at=4_000_000_000))
    assert client.purge("p") == 4
    assert _statuses(client, waiting) == ["cancelled"] * 4
    assert client.get(running)["status"] == "running"
    cancelled = wait_until(lambda: {e["job_id"] for e in client.replay(since)["events"]
                                    if e["type"] == "job.cancelled"} >= set(waiting), 10,
                           message="a job.cancelled event for each purged job")
    assert cancelled
    release.write_text("go")
    assert client.result(running, timeout=20) == "go"
    assert client.purge("p") == 0


def _start_spread_s(client: Client, ids: list[str]) -> float:
    jobs = client.wait_many(ids, timeout=60)
    assert [job["status"] for job in jobs] == ["succeeded"] * len(ids)
    starts = [job["started_at"] for job in jobs]
    return max(starts) - min(starts)


def test_a_rate_limit_spreads_starts_and_removing_it_restores_speed(cluster: Cluster) -> None:
    cluster.start_worker("w1", "--queues", "r")
    cluster.start_worker("w2", "--queues", "r")
    client = cluster.client()
    since = client.ping()["seq"]
    assert client.configure_queue("r", rate_limit=5)["rate_limit"] == 5
    ids = client.submit_many([{"task": "noop", "args": [i], "queue": "r"} for i in range(20)])
    # a burst of 5, then 15 more at 5 per second: the last starts 3 s after the first
    spread = _start_spread_s(client, ids)
    assert 2.7 <= spread < 4.5, spread
    assert client.configure_queue("r", rate_limit=0)["rate_limit"] is None
    ids = client.submit_many([{"task": "noop", "args": [i], "queue": "r"} for i in range(20)])
    assert _start_spread_s(client, ids) < 1.5
    updates = [e for e in client.replay(since)["events"] if e["type"] == "queue.updated"]
    assert [(e["queue"], e["rate_limit"]) for e in updates] == [("r", 5), ("r", None)]


def test_queue_settings_survive_a_broker_restart(cluster: Cluster) -> None:
    client = cluster.client()
    client.configure_queue("kept", paused=True, rate_limit=2.5)
    job_id = client.submit("noop", 1, queue="kept")
    cluster.kill(cluster.broker)
    cluster.start_broker()
    client = cluster.client()
    row = client.stats()["queues"]["kept"]
    assert (row["paused"], row["rate_limit"], row["queued"]) == (True, 2.5, 1)
    cluster.start_worker("w1", "--queues", "kept")
    holds_for(lambda: client.get(job_id)["status"] == "queued", 1.0,
              message="the job of the still paused queue staying queued")
    client.configure_queue("kept", paused=False)
    assert client.result(job_id, timeout=20) == 1


def test_bad_settings_are_refused(cluster: Cluster) -> None:
    client = cluster.client()
    for rate in (-1, math.nan, math.inf):
        with pytest.raises(BrokerError) as caught:
            client.configure_queue("q", rate_limit=rate)
        assert caught.value.code == "bad_request"
    assert "q" not in client.stats()["queues"]
