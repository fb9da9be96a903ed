"""Dependencies on real processes: chains run in order, failures cancel down the chain,
deferred jobs survive a broker restart."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.cluster import Cluster
from zjobs import BrokerError


def test_a_chain_runs_in_order(cluster: Cluster) -> None:
    cluster.start_worker("w1", "--concurrency", "4")
    client = cluster.client()
    ids = client.chain([{"task": "sleep", "args": [0.1]} for _ in range(4)])
    jobs = client.wait_many(ids, timeout=30)
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    assert [j["depends_on"] for j in jobs] == [None, *([i] for i in ids[:-1])]
    for before, after in zip(jobs, jobs[1:], strict=False):
        assert before["finished_at"] <= after["started_at"]


def test_a_failed_parent_cancels_its_dependents_down_the_chain(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    cluster.start_worker("w1")
    client = cluster.client()
    parent = client.submit("flaky", str(tmp_path / "counter"), 5)  # fails: no retries
    child = client.submit("noop", depends_on=[parent])
    [grandchild] = client.chain([{"task": "noop", "depends_on": [child]}])
    jobs = client.wait_many([parent, child, grandchild], timeout=30)
    assert [j["status"] for j in jobs] == ["failed", "cancelled", "cancelled"]
    for job, cause in ((jobs[1], parent), (jobs[2], child)):
        assert job["error"]["type"] == "DependencyFailed" and cause in job["error"]["message"]
        assert job["started_at"] is None


def test_an_unknown_dependency_is_not_found(cluster: Cluster) -> None:
    client = cluster.client()
    with pytest.raises(BrokerError) as refused:
        client.submit("noop", depends_on=["no-such-job"])
    assert refused.value.code == "not_found"


def test_deferred_jobs_survive_a_broker_restart_and_are_promoted_after(cluster: Cluster) -> None:
    client = cluster.client(timeout=30)
    parent = client.submit("noop", queue="later")  # nobody serves it yet
    ids = client.chain([{"task": "add", "args": [i, 1], "depends_on": [parent]}
                        for i in range(3)])
    assert [client.get(i)["status"] for i in ids] == ["deferred"] * 3
    cluster.kill(cluster.broker, signal.SIGKILL)
    cluster.start_broker()
    client = cluster.client(timeout=30)
    assert client.stats()["jobs"]["deferred"] == 3
    cluster.start_worker("w1", "--queues", "later,default")
    jobs = client.wait_many([parent, *ids], timeout=30)
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    assert [j["result"] for j in jobs[1:]] == [1, 2, 3]
