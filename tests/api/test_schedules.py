"""The /schedules routes over real HTTP, on a real broker and API."""

from __future__ import annotations

import uuid

import httpx

from tests.waiting import wait_until

from .test_jobs import ISO_UTC


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_put_get_list_delete_and_the_jobs_it_fires(http: httpx.Client) -> None:
    name, queue = _unique("beat"), _unique("nobody")  # no worker serves the queue
    response = http.put(f"/schedules/{name}", json={
        "task": "noop", "args": [7], "every_s": 1, "queue": queue, "priority": 2})
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["name"], shown["task"], shown["args"], shown["every_s"], shown["cron"]) == \
        (name, "noop", [7], 1.0, None)
    assert ISO_UTC.match(shown["next_run_at"]) and shown["last_run_at"] is None
    assert http.get(f"/schedules/{name}").json()["queue"] == queue
    assert name in [s["name"] for s in http.get("/schedules").json()["schedules"]]

    jobs = wait_until(lambda: http.get("/jobs", params={"queue": queue}).json()["jobs"], 10,
                      message="the schedule to fire")
    job = http.get(f"/jobs/{jobs[0]['id']}").json()
    assert job["schedule"] == name and job["priority"] == 2 and job["args"] == [7]
    assert job["idempotency_key"].startswith(f"schedule:{name}:")
    assert ISO_UTC.match(http.get(f"/schedules/{name}").json()["last_run_at"])

    replaced = http.put(f"/schedules/{name}", json={"task": "noop", "cron": "0 0 1 1 *",
                                                     "queue": queue}).json()
    assert replaced["cron"] == "0 0 1 1 *" and replaced["every_s"] is None
    assert http.delete(f"/schedules/{name}").status_code == 204
    assert http.get(f"/schedules/{name}").status_code == 404
    assert http.delete(f"/schedules/{name}").status_code == 404


def test_bad_schedules_are_422_with_the_reason(http: httpx.Client) -> None:
    name = _unique("bad")
    cases = [
        ({"task": "noop", "cron": "61 * * * *"}, "bad cron expression"),
        ({"task": "noop", "cron": "* * *"}, "5 fields"),
        ({"task": "noop", "every_s": 0}, "greater than or equal to 1"),
        ({"task": "noop", "every_s": -5}, "greater than or equal to 1"),
        ({"task": "noop", "every_s": 0.001}, "greater than or equal to 1"),
        ({"task": "noop", "every_s": 1e30}, "less than or equal to 31622400"),
        ({"task": "noop", "cron": "0 0 31 2 *"}, "never fires"),
        ({"task": "noop"}, "exactly one of cron and every_s"),
        ({"task": "noop", "cron": "* * * * *", "every_s": 5}, "exactly one of cron and every_s"),
        ({"every_s": 5}, "task"),
        ({"task": "noop", "every_s": 5, "colour": "red"}, "colour"),
    ]
    for body, reason in cases:
        response = http.put(f"/schedules/{name}", json=body)
        assert response.status_code == 422, (body, response.text)
        assert reason in response.text, (body, response.text)
    assert http.get(f"/schedules/{name}").status_code == 404  # nothing was stored
