"""GET /meta: the facts from their one definitions, the limits it gives are the ones the API
enforces, and it needs the token but not the broker."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import __version__
from zjobs.broker.core import commands, engine
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import TERMINAL_IN_ORDER
from zjobs.broker.wire.schema import STATE_EVENTS, STATES, EventType

from .server import start_api

NOBODY = "meta-nobody-serves-this"  # jobs the limit checks create wait here, then are purged


def test_meta_gives_the_states_event_types_and_version(http: httpx.Client) -> None:
    meta = http.get("/meta").json()
    assert meta["version"] == __version__
    assert meta["states"] == list(STATES)
    assert meta["terminal"] == list(TERMINAL_IN_ORDER) == ["succeeded", "failed", "cancelled"]
    assert meta["retryable"] == ["failed", "cancelled"]  # RETRY refuses the others (409)
    assert meta["purgeable"] == ["deferred", "scheduled", "queued"]
    assert meta["event_types"] == [kind.value for kind in EventType]
    assert meta["state_events"] == {state: kind.value for state, kind in STATE_EVENTS.items()}
    fields = meta["limits"]["fields"]
    assert fields["priority"] == {"default": 0, "min": lim.PRIORITY_MIN, "max": lim.PRIORITY_MAX}
    assert fields["timeout_s"] == {"min": 0, "min_exclusive": True, "max": lim.TIMEOUT_MAX_S}
    assert fields["queue"] == {"max_len": lim.QUEUE_MAX_LEN}
    assert fields["depends_on"] == {"max_len": lim.DEPENDS_ON_MAX}


def test_the_limits_meta_gives_are_the_ones_enforced(http: httpx.Client) -> None:
    """Each bound as /meta says, checked on both sides: the edge passes, one beyond is 422."""
    limits = http.get("/meta").json()["limits"]
    page = limits["list_limit"]
    assert http.get("/jobs", params={"limit": page["max"]}).status_code == 200
    assert http.get("/jobs", params={"limit": page["max"] + 1}).status_code == 422
    assert len(http.get("/jobs").json()["jobs"]) <= page["default"]
    fields = limits["fields"]
    job = {"task": "noop", "queue": NOBODY}
    edges = [("priority", fields["priority"]["max"], fields["priority"]["max"] + 1),
             ("max_retries", fields["max_retries"]["max"], fields["max_retries"]["max"] + 1),
             ("timeout_s", fields["timeout_s"]["max"], fields["timeout_s"]["min"]),
             ("task", "t" * fields["task"]["max_len"], "t" * (fields["task"]["max_len"] + 1))]
    for name, edge, beyond in edges:
        assert http.post("/jobs", json={**job, name: edge}).status_code == 201, name
        refused = http.post("/jobs", json={**job, name: beyond})
        assert refused.status_code == 422 and name in refused.json()["error"]["message"], name
    done = http.post("/jobs", json={"task": "add", "args": [1, 2]}).json()["id"]
    wait = limits["result_wait_s"]["max"]
    assert http.get(f"/jobs/{done}/result", params={"wait": wait}).json()["result"] == 3
    assert http.get(f"/jobs/{done}/result", params={"wait": wait + 1}).status_code == 422
    assert http.post(f"/queues/{NOBODY}/purge").json()["cancelled"] == len(edges)


def test_retryable_and_purgeable_are_what_the_broker_does(http: httpx.Client) -> None:
    meta = http.get("/meta").json()
    assert engine.PURGEABLE == set(meta["purgeable"])  # what the engine's purge cancels
    assert commands.RETRYABLE == set(meta["retryable"])  # RETRY_MANY's
    queued = http.post("/jobs", json={"task": "noop", "queue": NOBODY}).json()
    waiting = {"queued": queued, "deferred": http.post("/jobs", json={
        "task": "noop", "queue": NOBODY, "depends_on": [queued["id"]]}).json(),
        "scheduled": http.post("/jobs", json={"task": "noop", "queue": NOBODY,
                                              "run_at": time.time() + 3600}).json()}
    assert {state: job["status"] for state, job in waiting.items()} == {
        state: state for state in meta["purgeable"]}
    assert http.post(f"/queues/{NOBODY}/purge").json()["cancelled"] == len(waiting)
    failed = http.post("/jobs", json={"task": "add", "args": ["a", 1]}).json()["id"]
    done = http.post("/jobs", json={"task": "add", "args": [1, 2]}).json()["id"]
    ended = {http.get(f"/jobs/{job_id}/result", params={"wait": 30}).json()["status"]: job_id
             for job_id in (failed, done, queued["id"])}
    assert set(ended) == set(meta["terminal"])
    for state, job_id in ended.items():
        again = http.post(f"/jobs/{job_id}/retry")
        assert again.status_code == (200 if state in meta["retryable"] else 409), state
    assert http.post(f"/queues/{NOBODY}/purge").json()["cancelled"] == 1  # the one retried


def test_meta_needs_the_token_but_not_the_broker(cluster: Cluster) -> None:
    api = start_api(cluster, token="s3cret", env={"ZJOBS_MAX_MESSAGE": "65536"})
    with httpx.Client(base_url=api.base_url, timeout=30) as anonymous:
        assert anonymous.get("/meta").status_code == 401
    with api.client() as http:
        assert http.get("/meta").json()["limits"]["body_bytes"] == {"max": 65536}
        too_big = {"task": "noop", "args": ["x" * 65536]}
        assert http.post("/jobs", json=too_big).status_code == 413
        os.killpg(cluster.broker.pid, signal.SIGSTOP)  # silent, its sockets still open
        try:
            wait_until(lambda: http.get("/health").status_code == 503, 15,
                       message="/health to say the broker is unreachable")
            assert http.get("/jobs").status_code == 503  # gated: the broker is needed
            down = http.get("/meta")  # not gated: the dashboard opens on it during an outage
            assert down.status_code == 200 and down.json()["states"] == list(STATES)
        finally:
            os.killpg(cluster.broker.pid, signal.SIGCONT)
