"""The /queues routes over real HTTP against a real broker and worker."""

from __future__ import annotations

import httpx

from tests.waiting import holds_for, wait_until


def test_patch_pauses_and_resumes_a_queue(http: httpx.Client) -> None:
    answer = http.patch("/queues/rest-held", json={"paused": True})
    assert answer.status_code == 200
    assert answer.json() == {"name": "rest-held", "paused": True, "rate_limit": None}
    job = http.post("/jobs", json={"task": "noop", "args": [1], "queue": "rest-held"}).json()
    row = http.get("/queues").json()["queues"]["rest-held"]
    assert (row["paused"], row["rate_limit"], row["queued"]) == (True, None, 1)
    assert http.patch("/queues/rest-held", json={"paused": False}).json()["paused"] is False
    assert http.get(f"/jobs/{job['id']}").json()["status"] == "queued"  # w1 serves "default"


def test_a_paused_queue_starts_nothing_until_resumed(http: httpx.Client) -> None:
    http.patch("/queues/default", json={"paused": True})
    try:
        job = http.post("/jobs", json={"task": "noop", "args": [2]}).json()
        holds_for(lambda: http.get(f"/jobs/{job['id']}").json()["status"] == "queued", 1.0,
                  message="the job of the paused queue staying queued")
    finally:
        http.patch("/queues/default", json={"paused": False})
    done = http.get(f"/jobs/{job['id']}/result", params={"wait": 20}).json()
    assert done["status"] == "succeeded" and done["result"] == 2


def test_patch_sets_and_removes_a_rate_limit(http: httpx.Client) -> None:
    assert http.patch("/queues/rest-rate", json={"rate_limit": 5}).json()["rate_limit"] == 5
    queues = http.get("/queues").json()["queues"]
    assert queues["rest-rate"]["rate_limit"] == 5 and queues["rest-rate"]["paused"] is False
    assert http.patch("/queues/rest-rate", json={"rate_limit": None}).json()["rate_limit"] \
        is None
    http.patch("/queues/rest-rate", json={"rate_limit": 2})
    assert http.patch("/queues/rest-rate", json={"rate_limit": 0}).json()["rate_limit"] is None


def test_bad_patches_are_refused(http: httpx.Client) -> None:
    for body in ({"rate_limit": -1}, {"paused": "yes"}, {"rate_limit": "fast"},
                 {"speed": 3}, [1]):
        answer = http.patch("/queues/rest-bad", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["error"]["code"] == "invalid"
    nan = http.patch("/queues/rest-bad", content=b'{"rate_limit": NaN}',
                     headers={"content-type": "application/json"})
    assert nan.status_code == 400
    assert "rest-bad" not in http.get("/queues").json()["queues"]


def test_purge_answers_how_many_were_cancelled(http: httpx.Client) -> None:
    http.patch("/queues/default", json={"paused": True})
    try:
        ids = [http.post("/jobs", json={"task": "noop", "args": [i]}).json()["id"]
               for i in range(3)]
        answer = http.post("/queues/default/purge")
        assert answer.status_code == 200 and answer.json() == {"cancelled": 3}
    finally:
        http.patch("/queues/default", json={"paused": False})
    wait_until(lambda: all(http.get(f"/jobs/{i}").json()["status"] == "cancelled" for i in ids),
               10, message="the purged jobs to be cancelled")
    assert http.post("/queues/nobody-here/purge").json() == {"cancelled": 0}
