"""Every error status, always as `{"error": {"code", "message"}}`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Cluster
from tests.waiting import free_port

from .server import start_api


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"]
    return body["error"]["message"]


JSON = {"Content-Type": "application/json"}


def test_malformed_json_is_400(http: httpx.Client) -> None:
    _error(http.post("/jobs", content=b'{"task": "add",', headers=JSON), 400, "bad_request")
    _error(http.post("/jobs", content=b""), 422, "invalid")  # no body: not a job


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None, "application/jsonx"])
def test_a_body_not_sent_as_json_is_415_and_not_read(http: httpx.Client,
                                                     content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path, body in (("POST", "/jobs", b'{"task": "noop"}'),
                               ("PUT", "/schedules/plain", b'{"task": "noop", "every_s": 60}'),
                               ("PATCH", "/queues/plain", b'{"paused": true}'),
                               ("POST", "/jobs/retry", b'{"queue": "plain"}')):
        response = http.request(method, path, content=body, headers=headers)
        assert "Content-Type: application/json" in _error(response, 415,
                                                          "unsupported_media_type")
    assert http.get("/queues").json()["queues"].get("plain") is None
    assert http.get("/schedules/plain").status_code == 404
    # JSON with a charset or a +json type is JSON
    assert http.post("/jobs", content=b'{"task": "noop"}', headers={
        "Content-Type": "application/json; charset=utf-8"}).status_code == 201
    assert http.post("/jobs", content=b'{"task": "noop"}', headers={
        "Content-Type": "application/vnd.zjobs+json"}).status_code == 201


def test_invalid_fields_are_422_naming_the_field(http: httpx.Client) -> None:
    assert "priority" in _error(http.post("/jobs", json={"task": "add", "priority": "high"}),
                                422, "invalid")
    assert "colour" in _error(http.post("/jobs", json={"task": "add", "colour": 1}),
                              422, "invalid")
    assert "task" in _error(http.post("/jobs", json={"args": [1]}), 422, "invalid")
    assert "jobs.1.max_retries" in _error(
        http.post("/jobs", json={"jobs": [{"task": "a"}, {"task": "b", "max_retries": -1}]}),
        422, "invalid")
    _error(http.post("/jobs", json={"jobs": []}), 422, "invalid")
    _error(http.post("/jobs", json=[{"task": "add"}]), 422, "invalid")
    _error(http.get("/jobs", params={"status": "sleeping"}), 422, "invalid")
    _error(http.get("/jobs", params={"limit": 1001}), 422, "invalid")
    _error(http.get("/jobs/x/result", params={"wait": "soon"}), 422, "invalid")
    _error(http.get("/events", headers={"Last-Event-ID": "abc"}), 400, "bad_request")
    _error(http.post("/jobs", data={"spec": '{"entry": ""}'},
                     files=[("code_files", ("a.py", b"", "text/plain"))]), 422, "invalid")
    _error(http.post("/jobs", data={"colour": "red"},
                     files=[("code_files", ("a.py", b"", "text/plain"))]), 422, "invalid")


def test_unknown_job_and_route_are_404(http: httpx.Client) -> None:
    for path in ("/jobs/nope", "/jobs/nope/result", "/jobs/nope/logs", "/jobs/nope/events",
                 "/jobs/nope/logs/stream", "/jobs/nope/artifacts", "/jobs/nope/artifacts/a"):
        _error(http.get(path), 404, "not_found")
    _error(http.get("/no/such/route"), 404, "not_found")
    _error(http.delete("/jobs"), 405, "method_not_allowed")


def test_cancel_of_a_finished_job_is_409(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "noop"}).json()
    assert http.get(f"/jobs/{job['id']}/result", params={"wait": 30}).status_code == 200
    assert "succeeded" in _error(http.post(f"/jobs/{job['id']}/cancel"), 409, "conflict")


@pytest.fixture(scope="module")
def small_api(api_cluster: Cluster) -> Iterator[httpx.Client]:
    server = start_api(api_cluster, env={"ZJOBS_MAX_MESSAGE": "4096"})
    with server.client() as client:
        yield client


def test_body_over_the_limit_is_413_by_length_and_by_stream(small_api: httpx.Client) -> None:
    big = b'{"task": "noop", "args": ["' + b"x" * 8000 + b'"]}'
    _error(small_api.post("/jobs", content=big), 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield big[:3000]
        yield big[3000:]

    _error(small_api.post("/jobs", content=chunks()), 413, "too_large")
    files = [("code_files", ("main.py", b"#" * 8000, "text/plain"))]
    _error(small_api.post("/jobs", data={"spec": '{"entry": "main.py"}'}, files=files),
           413, "too_large")
    assert small_api.post("/jobs", json={"task": "noop", "queue": "nowhere"}).status_code == 201


def test_broker_down_is_503(bare_cluster: Cluster) -> None:
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    server = start_api(bare_cluster, frontend=nowhere, expect_status=503,
                       env={"ZJOBS_EVENTS": f"tcp://127.0.0.1:{free_port()}",
                            "ZJOBS_API_BROKER_TIMEOUT": "1"})
    with server.client() as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["error"]["code"] == "unavailable"
        _error(client.get("/jobs/x"), 503, "unavailable")
        # no broker to send to: certainly nothing kept, so `unavailable`, safe to retry
        assert "not sent" in _error(client.post("/jobs", json={"task": "noop"}), 503,
                                    "unavailable")
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "zjobs_broker_up 0.0" in metrics.text
