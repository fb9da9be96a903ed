"""The bearer token, and the Prometheus metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs.api.context import STATIC_DIR as STATIC

from .server import sse_messages, start_api, wait_for_comment

TOKEN = "s3cret-token"


def test_the_token_is_enforced_except_on_health(api_cluster: Cluster) -> None:
    server = start_api(api_cluster, token=TOKEN)
    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        missing = anonymous.get("/jobs")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/events").status_code == 401
        assert anonymous.post("/jobs", json={"task": "noop"}).status_code == 401
        # ?token= is for GETs (EventSource cannot set headers), not for submissions
        assert anonymous.post("/jobs", params={"token": TOKEN},
                              json={"task": "noop"}).status_code == 401

        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/").status_code == 200  # the page; its API calls carry the token
        if (STATIC / "index.html").is_file():
            assert anonymous.get("/static/index.html").status_code == 200
        assert anonymous.get("/static/no-such-file.js").status_code == 404
        assert anonymous.get("/jobs", params={"token": TOKEN}).status_code == 200
        with anonymous.stream("GET", "/events", params={"token": TOKEN}) as response:
            assert response.status_code == 200
            wait_for_comment(sse_messages(response.iter_lines()), "live")

    with server.client() as authorised:
        job = authorised.post("/jobs", json={"task": "add", "args": [2, 3]})
        assert job.status_code == 201
        result = authorised.get(f"/jobs/{job.json()['id']}/result", params={"wait": 30})
        assert result.json()["result"] == 5
        assert authorised.get("/metrics").status_code == 200


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _total(samples: dict[tuple[str, tuple], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_metrics_have_sane_values(http: httpx.Client) -> None:
    ids = [http.post("/jobs", json={"task": "noop", "args": [i]}).json()["id"] for i in range(4)]
    for job_id in ids:
        assert http.get(f"/jobs/{job_id}/result", params={"wait": 30}).status_code == 200

    def scraped() -> dict | None:
        response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        # the histograms follow the bus, a moment behind the broker
        return samples if _total(samples, "zjobs_job_run_seconds_count") >= 4 else None

    samples = wait_until(scraped, 10, message="the run-time histogram to count the jobs")
    assert samples[("zjobs_broker_up", ())] == 1
    assert samples[("zjobs_jobs", (("state", "succeeded"),))] >= 4
    assert samples[("zjobs_queue_jobs", (("queue", "default"), ("state", "succeeded")))] >= 4
    assert samples[("zjobs_workers", ())] >= 1
    assert samples[("zjobs_jobs_submitted_total", ())] >= 4
    assert samples[("zjobs_jobs_finished_total", (("status", "succeeded"),))] >= 4
    assert _total(samples, "zjobs_job_queue_wait_seconds_count") >= 4
    assert 0 <= _total(samples, "zjobs_job_queue_wait_seconds_sum") < 60
    assert samples[("zjobs_api_events_received_total", ())] > 0
    assert ("zjobs_api_events_dropped_total", ()) in samples
    assert ("zjobs_api_events_replayed_total", ()) in samples
