"""Bodies and headers no job can be made of: each a 4xx with a clear error, nothing created."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster import Cluster

from .test_errors import _error


def job_total(cluster: Cluster) -> int:
    with cluster.client() as client:
        return sum(client.stats()["jobs"].values())


def post(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post("/jobs", content=body, headers={"Content-Type": "application/json"})


REFUSED = [
    (b'{"task": "noop", "run_at": 1e20}', 422, "invalid", "run_at"),
    (b'{"task": "noop", "run_at": -1}', 422, "invalid", "run_at"),
    (b'{"task": "noop", "run_at": "0001-01-01T00:00:00Z"}', 422, "invalid", "run_at"),
    (b'{"task": "noop", "run_at": NaN}', 400, "bad_request", "NaN"),
    (b'{"task": "noop", "run_at": Infinity}', 400, "bad_request", "Infinity"),
    (b'{"task": "noop", "timeout_s": 1e400}', 400, "bad_request", "1e400"),
    (b'{"task": "noop", "args": ["\xff\xfe"]}', 400, "bad_request", "UTF-8"),
    (b"[" * 5000 + b"]" * 5000, 400, "bad_request", "nested"),
    (b'{"task": "noop", "args": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "bad_request",
     "nested"),
    (b'{"task": "noop", "kwargs": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}", 422, "invalid",
     "kwargs"),
    (b'{"task": "noop", "priority": 9223372036854775808}', 422, "invalid", "priority"),
    (b'{"task": "noop", "priority": -2147483649}', 422, "invalid", "priority"),
    (b'{"task": "noop", "max_retries": 18446744073709551615}', 422, "invalid", "max_retries"),
    (b'{"task": "noop", "args": [1, 18446744073709551616]}', 422, "invalid", "args"),
    (b'{"task": "noop", "kwargs": {"n": -9223372036854775809}}', 422, "invalid", "kwargs"),
    (b'{"jobs": [{"task": "noop"}, {"task": "noop", "retry_backoff_s": 1e9}]}', 422,
     "invalid", "jobs.1.retry_backoff_s"),
]


@pytest.mark.parametrize(("body", "status", "code", "named"), REFUSED,
                         ids=[body[:48].decode(errors="replace") for body, *_ in REFUSED])
def test_a_body_no_job_can_be_made_of_is_4xx_and_creates_nothing(
        api_cluster: Cluster, http: httpx.Client, body: bytes, status: int, code: str,
        named: str) -> None:
    before = job_total(api_cluster)
    assert named in _error(post(http, body), status, code)
    assert job_total(api_cluster) == before
    assert http.get("/jobs").status_code == 200


def test_an_exec_spec_form_field_with_nan_is_400(http: httpx.Client) -> None:
    files = [("code_files", ("main.py", b"print(1)", "text/plain"))]
    response = http.post("/jobs", data={"spec": '{"entry": "main.py", "timeout_s": NaN}'},
                         files=files)
    assert "NaN" in _error(response, 400, "bad_request")
    response = http.post("/jobs", data={"spec": '{"entry": "main.py"}', "priority": str(2**40)},
                         files=files)
    assert "priority" in _error(response, 422, "invalid")


@pytest.mark.parametrize("last_id", [str(2**64), str(2**63), "-1", "abc", "1e3", "٣", "9" * 5000])
def test_a_resume_point_out_of_range_is_400_on_every_stream(http: httpx.Client,
                                                            last_id: str) -> None:
    job = http.post("/jobs", json={"task": "noop"}).json()
    for path in (f"/jobs/{job['id']}/events", f"/jobs/{job['id']}/logs/stream", "/events"):
        by_header = http.get(path, headers={"Last-Event-ID": last_id.encode()})
        assert "Last-Event-ID" in _error(by_header, 400, "bad_request")
        _error(http.get(path, params={"last_event_id": last_id}), 400, "bad_request")
    with http.stream("GET", "/events", headers={"Last-Event-ID": str(2**63 - 1)}) as ok:
        assert ok.status_code == 200
