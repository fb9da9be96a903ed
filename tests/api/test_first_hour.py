"""What a new user meets in the first hour, over HTTP: a job no worker can run says so, and a
broker known to be down is told at once."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.cluster import Cluster
from tests.waiting import wait_until

from .server import start_api


def test_a_job_no_live_worker_can_run_is_unserved_in_rest(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    api = start_api(cluster)
    with api.client() as http:
        lonely = http.post("/jobs", json={"task": "add", "args": [1, 2], "queue": "nobody"})
        unknown = http.post("/jobs", json={"task": "no_such_task", "args": []})
        served = http.post("/jobs", json={"task": "add", "args": [1, 2]}).json()
        for created in (lonely, unknown):
            assert created.status_code == 201
            job = http.get(f"/jobs/{created.json()['id']}").json()
            assert (job["status"], job["unserved"]) == ("queued", True), job
        listed = http.get("/jobs", params={"queue": "nobody"}).json()["jobs"]
        assert [j.get("unserved") for j in listed] == [True]
        done = http.get(f"/jobs/{served['id']}/result", params={"wait": 30}).json()
        assert done["result"] == 3
        assert "unserved" not in http.get(f"/jobs/{served['id']}").json()


def test_a_broker_known_to_be_down_gets_an_instant_503(cluster: Cluster) -> None:
    api = start_api(cluster)
    http = httpx.Client(base_url=api.base_url, timeout=30)
    os.killpg(cluster.broker.pid, signal.SIGSTOP)  # silent, its sockets still open
    try:
        wait_until(lambda: http.get("/health").json()["broker"]["reachable"] is False, 15,
                   message="/health to say the broker is unreachable")
        for method, path in (("GET", "/queues"), ("GET", "/jobs"), ("POST", "/jobs"),
                             ("GET", "/workers")):
            started = time.monotonic()
            answer = http.request(method, path, json={"task": "add"} if method == "POST" else None)
            took = time.monotonic() - started
            assert answer.status_code == 503 and took < 1.5, (path, answer.status_code, took)
            error = answer.json()["error"]
            assert error["code"] == "unavailable" and cluster.frontend in error["message"]
            assert answer.headers["retry-after"] == "1"
        started = time.monotonic()
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and time.monotonic() - started < 1.5
        assert "zjobs_broker_up 0" in metrics.text
        assert http.get("/").status_code == 200  # the dashboard still loads, and says why
    finally:
        os.killpg(cluster.broker.pid, signal.SIGCONT)
    wait_until(lambda: http.get("/queues").status_code == 200, 15,
               message="the API to serve again once the broker answers")
    http.close()


def test_every_422_has_the_code_invalid(cluster: Cluster) -> None:
    """Whether pydantic or the broker found the problem: one kind of error, one code."""
    api = start_api(cluster)
    with api.client() as http:
        answers = [
            http.put("/schedules/bad", json={"task": "noop", "cron": "61 * * * *"}),  # broker
            http.put("/schedules/bad", json={"task": "noop"}),
            http.post("/jobs", json={"task": "noop", "priority": "high"}),  # pydantic
            http.patch("/queues/q", json={"rate_limit": -1}),
        ]
        for answer in answers:
            assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid"), \
                answer.text
