"""The /jobs routes over real HTTP, on a real broker and worker."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx

from tests.waiting import wait_until
from zjobs.api.app import create_app
from zjobs.api.openapi import document, openapi_path
from zjobs.broker.wire.jobs import STATES

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _queue(name: str) -> str:
    """A queue no worker serves, unique to one test."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_submit_returns_the_job_and_result_waits_for_it(http: httpx.Client) -> None:
    response = http.post("/jobs", json={"task": "add", "args": [1, 2]})
    assert response.status_code == 201
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["task"] == "add" and job["args"] == [1, 2] and job["queue"] == "default"
    assert job["status"] in ("queued", "running", "succeeded")
    assert ISO_UTC.match(job["created_at"])

    result = http.get(f"/jobs/{job['id']}/result", params={"wait": 30})
    assert result.status_code == 200
    assert result.json() == {"id": job["id"], "status": "succeeded", "result": 3, "error": None}
    done = http.get(f"/jobs/{job['id']}").json()
    assert ISO_UTC.match(done["started_at"]) and ISO_UTC.match(done["finished_at"])
    assert done["worker"] == "w1"


def test_result_of_a_pending_job_is_202_after_the_wait(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "noop", "queue": _queue("pending")}).json()
    response = http.get(f"/jobs/{job['id']}/result", params={"wait": 0.3})
    assert response.status_code == 202
    assert response.json() == {"id": job["id"], "status": "queued", "result": None,
                               "error": None}
    assert http.get(f"/jobs/{job['id']}/result").status_code == 202  # no wait at all


def test_batch_submit_answers_every_job_in_order(http: httpx.Client) -> None:
    response = http.post("/jobs", json={"jobs": [{"task": "add", "args": [i, i]}
                                                 for i in range(5)]})
    assert response.status_code == 201
    jobs = response.json()["jobs"]
    assert [j["args"] for j in jobs] == [[i, i] for i in range(5)]
    results = [http.get(f"/jobs/{j['id']}/result", params={"wait": 30}).json()["result"]
               for j in jobs]
    assert results == [2 * i for i in range(5)]


def test_list_filters_and_pages_with_the_cursor(http: httpx.Client) -> None:
    queue = _queue("paging")
    submitted = http.post("/jobs", json={"jobs": [{"task": "noop", "args": [i], "queue": queue}
                                                  for i in range(25)]}).json()["jobs"]
    http.post("/jobs", json={"jobs": [{"task": "sleep", "args": [1], "queue": queue}] * 3})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"queue": queue, "task": "noop", "limit": 10, **({"cursor": cursor}
                                                                  if cursor else {})}
        page = http.get("/jobs", params=params).json()
        pages += 1
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(j["id"] for j in submitted) and len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)  # newest first

    queued = http.get("/jobs", params={"queue": queue, "status": "queued", "limit": 100}).json()
    assert len(queued["jobs"]) == 28 and queued["next_cursor"] is None
    sleeps = http.get("/jobs", params={"queue": queue, "task": "sleep"}).json()["jobs"]
    assert len(sleeps) == 3
    assert http.get("/jobs", params={"queue": queue, "status": "running"}).json()["jobs"] == []


def test_list_with_several_statuses_matches_any_and_pages(http: httpx.Client) -> None:
    queue = _queue("statuses")
    ids = [j["id"] for j in http.post("/jobs", json={"jobs": [
        {"task": "noop", "args": [i], "queue": queue} for i in range(5)]}).json()["jobs"]]
    for job_id in ids[:2]:
        assert http.post(f"/jobs/{job_id}/cancel").status_code == 200

    def listed(**params: object) -> list[str]:
        seen, cursor = [], None
        while True:
            page = http.get("/jobs", params={"queue": queue, "limit": 2, **params,
                                             **({"cursor": cursor} if cursor else {})}).json()
            seen += [job["id"] for job in page["jobs"]]
            if (cursor := page["next_cursor"]) is None:
                return seen

    both = sorted(ids, reverse=True)
    assert listed(status=["cancelled", "queued"]) == both  # ?status=cancelled&status=queued
    assert listed(status="cancelled,queued") == both
    assert sorted(listed(status="cancelled")) == sorted(ids[:2])
    assert sorted(listed(status=["queued", "failed"])) == sorted(ids[2:])
    bad = http.get("/jobs", params={"status": ["queued", "lost"]})
    assert bad.status_code == 422 and "status" in bad.json()["error"]["message"]


def test_list_running_beside_a_stored_status(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "sleep", "args": [30]}).json()
    wait_until(lambda: http.get(f"/jobs/{job['id']}").json()["status"] == "running", 30,
               message="the sleep job to start")
    try:
        found = http.get("/jobs", params={"status": ["running", "succeeded"],
                                          "task": "sleep", "limit": 1000}).json()["jobs"]
        assert job["id"] in {j["id"] for j in found}
        assert {j["status"] for j in found} <= {"running", "succeeded"}
        queued = http.get("/jobs", params={"status": ["queued", "failed"], "task": "sleep",
                                           "limit": 1000}).json()["jobs"]
        assert job["id"] not in {j["id"] for j in queued}  # stored as queued, but it runs
    finally:
        http.post(f"/jobs/{job['id']}/cancel")


def test_list_by_worker(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "noop", "args": ["by-worker"]}).json()
    http.get(f"/jobs/{job['id']}/result", params={"wait": 30})
    found = http.get("/jobs", params={"worker": "w1", "limit": 1000}).json()["jobs"]
    assert job["id"] in {j["id"] for j in found}
    assert {j["worker"] for j in found} == {"w1"}
    assert http.get("/jobs", params={"worker": "nobody"}).json()["jobs"] == []


def test_cancel_a_queued_job_then_cancel_again_is_409(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "noop", "queue": "nowhere"}).json()
    assert job["status"] == "queued"
    response = http.post(f"/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = http.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert http.post("/jobs/no-such-job/cancel").status_code == 404


def test_retry_a_failed_job_runs_it_again(http: httpx.Client, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    job = http.post("/jobs", json={"task": "flaky", "args": [str(counter), 5],
                                   "max_retries": 0}).json()
    first = http.get(f"/jobs/{job['id']}/result", params={"wait": 30}).json()
    assert first["status"] == "failed"
    assert first["error"]["type"] == "ValueError" and first["result"] is None

    retried = http.post(f"/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] in ("queued", "running")
    second = http.get(f"/jobs/{job['id']}/result", params={"wait": 30}).json()
    assert second["status"] == "failed"
    assert counter.read_text() == "2"  # it really ran twice

    ok = http.post("/jobs", json={"task": "noop"}).json()
    http.get(f"/jobs/{ok['id']}/result", params={"wait": 30})
    assert http.post(f"/jobs/{ok['id']}/retry").status_code == 409
    assert http.post("/jobs/no-such-job/retry").status_code == 404


def test_logs_are_plain_text_lines(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "chatty", "args": [5]}).json()
    assert http.get(f"/jobs/{job['id']}/result", params={"wait": 30}).json()["result"] == 5
    response = http.get(f"/jobs/{job['id']}/logs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "\n".join(f"line {i}" for i in range(1, 6))


MAIN_PY = b"""
import os
data = open("data/in.txt").read()
print("read", len(data), "bytes")
os.makedirs("out/sub", exist_ok=True)
open("out/result.txt", "w").write(data.upper())
open("out/sub/raw.bin", "wb").write(bytes(range(4)))
"""


def test_multipart_exec_job_and_its_artifacts(http: httpx.Client) -> None:
    files = [("code_files", ("main.py", MAIN_PY, "text/x-python")),
             ("input_files", ("data/in.txt", b"hello", "text/plain"))]
    response = http.post("/jobs", data={"spec": '{"entry": "main.py", "timeout_s": 30}',
                                        "priority": "3"}, files=files)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["kind"] == "exec" and job["priority"] == 3
    assert job["spec"]["entry"] == "main.py"
    assert job["spec"]["code_files"] == {"main.py": len(MAIN_PY)}
    assert job["spec"]["input_files"] == {"data/in.txt": 5}

    result = http.get(f"/jobs/{job['id']}/result", params={"wait": 60}).json()
    assert result["status"] == "succeeded", result
    assert http.get(f"/jobs/{job['id']}/logs").text == "read 5 bytes"
    listed = http.get(f"/jobs/{job['id']}/artifacts").json()["artifacts"]
    assert {(a["name"], a["size"]) for a in listed} == {("result.txt", 5), ("sub/raw.bin", 4)}

    text = http.get(f"/jobs/{job['id']}/artifacts/result.txt")
    assert text.status_code == 200 and text.content == b"HELLO"
    assert text.headers["content-type"].startswith("text/plain")
    raw = http.get(f"/jobs/{job['id']}/artifacts/sub/raw.bin")
    assert raw.content == bytes(range(4))
    missing = http.get(f"/jobs/{job['id']}/artifacts/nothing.txt")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_upload_names_that_leave_the_directory_are_refused(http: httpx.Client) -> None:
    for name in ("../evil.py", "/etc/evil.py", "a\\b.py", "x/../../evil.py", "./"):
        files = [("code_files", (name, b"print(1)", "text/plain"))]
        response = http.post("/jobs", data={"spec": '{"entry": "main.py"}'}, files=files)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["code"] == "invalid"
    json_job = {"kind": "exec", "spec": {"entry": "a.py", "code_files": {"../a.py": "x"}}}
    assert http.post("/jobs", json=json_job).status_code == 422


def test_workers_queues_and_stats(http: httpx.Client) -> None:
    workers = http.get("/workers").json()["workers"]
    w1 = next(w for w in workers if w["name"] == "w1")
    assert w1["capacity"] == 3 and w1["queues"] == ["default"]
    assert ISO_UTC.match(w1["joined_at"])
    assert http.get("/workers/w1").json()["name"] == "w1"
    missing = http.get("/workers/nobody")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    assert http.post("/jobs", json={"task": "add", "args": [1, 1]}).status_code == 201
    queues = http.get("/queues").json()["queues"]
    assert set(queues["default"]) == {*STATES, "unserved", "paused", "rate_limit"}
    stats = http.get("/stats").json()
    assert stats["workers"] >= 1 and stats["counters"]["submitted"] >= 1
    assert stats["api"]["last_seq"] is not None


def test_openapi_lists_every_route_and_the_pages_load(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    app = create_app("tcp://127.0.0.1:1", "tcp://127.0.0.1:2")
    for route in app.routes:
        methods = getattr(route, "methods", None)
        if not methods:
            continue  # the /static mount
        for method in methods - {"HEAD"}:
            assert method.lower() in doc["paths"][openapi_path(route.path)], route.path
    assert doc == document()
    docs = http.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
    home = http.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")


def test_depends_on_over_rest_defers_then_runs_and_an_unknown_id_is_404(
        http: httpx.Client) -> None:
    parent = http.post("/jobs", json={"task": "noop", "queue": _queue("parent")}).json()
    batch = http.post("/jobs", json={"jobs": [
        {"task": "add", "args": [1, 2], "id": f"child-{parent['id']}",
         "depends_on": [parent["id"]]},
        {"task": "add", "args": [3, 4], "depends_on": [f"child-{parent['id']}"]}]})
    assert batch.status_code == 201, batch.text
    child, grandchild = batch.json()["jobs"]
    assert http.get(f"/jobs/{grandchild['id']}").json()["status"] == "deferred"
    assert http.get(f"/jobs/{child['id']}").json()["depends_on"] == [parent["id"]]
    http.post(f"/jobs/{parent['id']}/cancel")
    done = http.get(f"/jobs/{grandchild['id']}/result", params={"wait": 30}).json()
    assert done["status"] == "cancelled" and done["error"]["type"] == "DependencyFailed"

    refused = http.post("/jobs", json={"task": "noop", "depends_on": ["no-such-job"]})
    assert refused.status_code == 404
    assert "no-such-job" in refused.text


def test_depends_on_lists_a_jobs_dependents(http: httpx.Client) -> None:
    queue = _queue("dependents")
    parent = http.post("/jobs", json={"task": "noop", "queue": queue}).json()
    unrelated = http.post("/jobs", json={"task": "noop", "queue": queue}).json()
    children = http.post("/jobs", json={"jobs": [
        {"task": "noop", "queue": queue, "depends_on": [parent["id"]]} for _ in range(3)]})
    assert children.status_code == 201
    expected = sorted((j["id"] for j in children.json()["jobs"]), reverse=True)
    page = http.get("/jobs", params={"depends_on": parent["id"]}).json()
    assert [j["id"] for j in page["jobs"]] == expected
    first = http.get("/jobs", params={"depends_on": parent["id"], "limit": 2}).json()
    rest = http.get("/jobs", params={"depends_on": parent["id"], "cursor": first["next_cursor"]})
    assert [j["id"] for j in first["jobs"] + rest.json()["jobs"]] == expected
    assert http.get("/jobs", params={"depends_on": unrelated["id"]}).json()["jobs"] == []


def test_retry_all_queues_every_cancelled_job_of_one_queue_again(http: httpx.Client) -> None:
    queue, elsewhere = _queue("retry-all"), _queue("retry-other")
    ids = [j["id"] for j in http.post("/jobs", json={"jobs": [
        {"task": "noop", "queue": queue} for _ in range(4)]}).json()["jobs"]]
    other = http.post("/jobs", json={"task": "noop", "queue": elsewhere}).json()
    http.post(f"/jobs/{other['id']}/cancel")
    assert http.post(f"/queues/{queue}/purge").json() == {"cancelled": 4}

    response = http.post("/jobs/retry", json={"status": ["cancelled"], "queue": queue})
    assert response.status_code == 200 and response.json() == {"retried": 4}
    assert {http.get(f"/jobs/{i}").json()["status"] for i in ids} == {"queued"}
    assert http.get(f"/jobs/{other['id']}").json()["status"] == "cancelled"
    bad = http.post("/jobs/retry", json={"status": ["succeeded"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"


def test_stats_carry_the_throughput_history_of_the_last_ten_minutes(
        http: httpx.Client) -> None:
    ok = http.post("/jobs", json={"jobs": [{"task": "add", "args": [i, 1]} for i in range(5)]})
    bad = http.post("/jobs", json={"task": "add", "args": ["a", 1]}).json()
    for job in [*ok.json()["jobs"], bad]:
        http.get(f"/jobs/{job['id']}/result", params={"wait": 30})

    def history() -> dict | None:
        found = http.get("/stats").json()["history"]
        return found if sum(found["failed"]) >= 1 and sum(found["succeeded"]) >= 5 else None

    found = history()  # at once: the second in progress is in the history too
    assert found is not None, "jobs that just ended are missing from the history"
    assert found["seconds"] == 600
    assert len(found["succeeded"]) == len(found["failed"]) == 600
    assert abs(found["end"] - time.time()) < 5
