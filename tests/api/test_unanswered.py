"""A broker that does not answer is reported truthfully: `unavailable` (503) only when nothing
was sent, so nothing was kept; `timeout` (504) when the request was sent, with the submit's
`Idempotency-Key`, so that sending it again cannot make a second job.

Before, a paused broker made `POST /jobs` answer 503 `unavailable` although the job existed
once the broker went on: a client that believed it and retried had two jobs.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Cluster
from tests.waiting import free_port, wait_until
from zjobs import AsyncClient, BrokerUnreachable, Client

from .server import ApiServer, start_api
from .test_errors import _error


@pytest.fixture
def paused_cluster(tmp_path) -> Iterator[tuple[Cluster, ApiServer]]:
    cluster = Cluster(tmp_path)
    try:
        cluster.start_broker()
        yield cluster, start_api(cluster, env={"ZJOBS_API_BROKER_TIMEOUT": "2"})
    finally:
        if cluster.broker is not None:
            cluster.kill(cluster.broker, signal.SIGCONT)
        cluster.close()


def _jobs_with_key(cluster: Cluster, queue: str) -> list[dict]:
    with cluster.client() as client:
        return client.list(queue=queue)


def test_a_submit_the_broker_kept_but_did_not_answer_is_504_and_safe_to_retry(
        paused_cluster: tuple[Cluster, ApiServer]) -> None:
    cluster, api = paused_cluster
    queue = f"paused-{uuid.uuid4().hex[:8]}"
    with api.client() as http:
        cluster.kill(cluster.broker, signal.SIGSTOP)  # it receives, but answers nothing
        try:
            response = http.post("/jobs", json={"task": "noop", "queue": queue})
            message = _error(response, 504, "timeout")
        finally:
            cluster.kill(cluster.broker, signal.SIGCONT)
        assert "may have been carried out" in message and "Idempotency-Key" in message
        # the API may have seen the broker down meanwhile: it answers 503 at once until
        # /health finds it back, so the retry goes once it has
        wait_until(lambda: http.get("/health").status_code == 200, 15,
                   message="the API to see the broker back")
        key = response.headers["Idempotency-Key"]
        again = http.post("/jobs", json={"task": "noop", "queue": queue},
                          headers={"Idempotency-Key": key})
        assert again.status_code == 201 and again.headers["Idempotency-Key"] == key
    # answered after its commit: the first submit was kept (503 "unavailable" would have
    # lied), and the retry with its key made no second job
    [kept] = _jobs_with_key(cluster, queue)
    assert kept["idempotency_key"] == key and again.json()["id"] == kept["id"]


def test_a_batch_gets_one_key_per_job_from_the_requests(http: httpx.Client) -> None:
    queue = f"keys-{uuid.uuid4().hex[:8]}"
    body = {"jobs": [{"task": "noop", "queue": queue},
                     {"task": "noop", "queue": queue, "idempotency_key": f"{queue}-own"}]}
    first = http.post("/jobs", json=body)
    assert first.status_code == 201
    key = first.headers["Idempotency-Key"]
    assert [j["idempotency_key"] for j in first.json()["jobs"]] == [f"{key}:0", f"{queue}-own"]
    again = http.post("/jobs", json=body, headers={"Idempotency-Key": key})
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    other = http.post("/jobs", json=body)  # no key given: a new one, new jobs but the keyed
    assert other.headers["Idempotency-Key"] != key
    assert other.json()["jobs"][0]["id"] != first.json()["jobs"][0]["id"]
    assert len(http.get("/jobs", params={"queue": queue}).json()["jobs"]) == 3


def test_an_idempotency_key_header_too_long_for_a_batch_is_400(http: httpx.Client) -> None:
    response = http.post("/jobs", json={"task": "noop"}, headers={"Idempotency-Key": "k" * 493})
    assert "Idempotency-Key" in _error(response, 400, "bad_request")


def test_the_clients_say_whether_the_request_was_sent(cluster: Cluster) -> None:
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    with Client(nowhere, timeout=0.3) as client, pytest.raises(BrokerUnreachable) as unsent:
        client.submit("noop")
    assert unsent.value.sent is False and "not reachable" in str(unsent.value)

    async def async_submit(endpoint: str) -> bool:
        async with AsyncClient(endpoint, timeout=0.5) as client:
            if endpoint == cluster.frontend:
                await client.ping()  # connected before the broker stops
                cluster.kill(cluster.broker, signal.SIGSTOP)
            with pytest.raises(BrokerUnreachable) as raised:
                await client.submit_many([{"task": "noop"}] * 3)
            return raised.value.sent

    assert asyncio.run(async_submit(nowhere)) is False
    with Client(cluster.frontend, timeout=0.5) as client:
        client.ping()  # connected (handshake done) before the broker stops
        cluster.kill(cluster.broker, signal.SIGSTOP)
        try:
            with pytest.raises(BrokerUnreachable) as silent:
                client.submit("noop")
            assert silent.value.sent is True
            assert "may have been carried out" in str(silent.value)
        finally:
            cluster.kill(cluster.broker, signal.SIGCONT)
    try:
        assert asyncio.run(async_submit(cluster.frontend)) is True
    finally:
        cluster.kill(cluster.broker, signal.SIGCONT)
