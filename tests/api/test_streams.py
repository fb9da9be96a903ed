"""The SSE streams over real HTTP: job lifecycles, resume without gaps, live log streams."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.cluster import Cluster
from tests.waiting import wait_until

from .server import Message, read_until, sse_messages, start_api, wait_for_comment

TERMINAL = ("job.succeeded", "job.failed", "job.cancelled")


@contextmanager
def stream(http: httpx.Client, path: str, **kw: object) -> Iterator[Iterator[Message]]:
    with http.stream("GET", path, **kw) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield sse_messages(response.iter_lines())


def _ended(seen: list[Message]) -> bool:
    return seen[-1].event == "end"


def _submit(http: httpx.Client, task: str, *args: object) -> str:
    response = http.post("/jobs", json={"task": task, "args": list(args)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _finish(http: httpx.Client, job_id: str) -> None:
    assert http.get(f"/jobs/{job_id}/result", params={"wait": 30}).status_code == 200


def _check_event(message: Message) -> dict:
    event = message.data
    assert message.id == str(event["seq"]) and message.event == event["type"]
    return event


def test_every_stream_opens_with_a_retry_delay(http: httpx.Client) -> None:
    job_id = _submit(http, "add", 1, 2)
    for path in ("/events", f"/jobs/{job_id}/events", f"/jobs/{job_id}/logs/stream"):
        with stream(http, path) as messages:
            first = next(messages)
            assert (first.retry, first.data_lines) == ("2000", []), path


def test_job_events_arrive_in_order_then_end(http: httpx.Client) -> None:
    job_id = _submit(http, "sleep", 0.5)  # running while the stream is opened
    with stream(http, f"/jobs/{job_id}/events") as messages:
        seen = read_until(messages, _ended)
    events = [_check_event(m) for m in seen[:-1]]
    assert [e["type"] for e in events] == ["job.submitted", "job.started", "job.succeeded"]
    assert all(e["job_id"] == job_id for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert seen[-1].data == {"status": "succeeded"}


def test_job_events_of_a_finished_job_are_replayed_then_end(http: httpx.Client) -> None:
    job_id = _submit(http, "chatty", 2)
    _finish(http, job_id)
    with stream(http, f"/jobs/{job_id}/events") as messages:
        seen = read_until(messages, _ended)
    types = [m.event for m in seen]
    assert types[0] == "job.submitted" and types[1] == "job.started"
    assert types[-2:] == ["job.succeeded", "end"]
    assert set(types[2:-2]) <= {"job.progress"}


def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(http: httpx.Client) -> None:
    start = http.get("/stats").json()["seq"]
    first = [_submit(http, "noop", i) for i in range(3)]
    for job_id in first:
        _finish(http, job_id)
    with stream(http, "/events", headers={"Last-Event-ID": str(start)}) as messages:
        head = read_until(messages, lambda seen: len(seen) == 4)
    last = int(head[-1].id)

    second = [_submit(http, "noop", i) for i in range(3)]
    for job_id in second:
        _finish(http, job_id)
    pending = set(second)

    def caught_up(seen: list[Message]) -> bool:
        event = seen[-1].data
        if event["type"] == "job.succeeded":
            pending.discard(event["job_id"])
        return not pending

    with stream(http, "/events", params={"last_event_id": last}) as messages:
        replayed = read_until(messages, caught_up)
        live_job = _submit(http, "noop", "live")  # the same stream goes on live
        pending.add(live_job)
        live = read_until(messages, caught_up)
    ids = [int(m.id) for m in head + replayed + live]
    assert ids == list(range(start + 1, start + 1 + len(ids)))
    events = [_check_event(m) for m in replayed + live]
    submitted = {e["job_id"] for e in events if e["type"] == "job.submitted"}
    assert set(second) | {live_job} <= submitted


def test_type_filter_and_worker_stream(http: httpx.Client) -> None:
    with stream(http, "/events", params={"types": "worker.", "last_event_id": 0}) as messages:
        seen = read_until(messages, lambda s: s[-1].event == "worker.joined")
    assert all(m.event.startswith("worker.") for m in seen)
    assert seen[-1].data["worker"] == "w1"

    with stream(http, "/events/workers/w1", params={"last_event_id": 0}) as messages:
        seen = read_until(messages, lambda s: s[-1].event == "worker.joined")
        assert seen[-1].data["worker"] == "w1"
        seen += wait_for_comment(messages, "live")
        job_id = _submit(http, "noop", "worker-stream")
        mine = read_until(messages, lambda s: s[-1].data.get("job_id") == job_id
                          and s[-1].event == "job.succeeded")
    assert all(m.data.get("worker") == "w1" for m in seen + mine)


def test_log_stream_opened_mid_job_sends_each_line_once_in_order(http: httpx.Client) -> None:
    job_id = _submit(http, "chatty", 20, 0.1)
    wait_until(lambda: http.get(f"/jobs/{job_id}/logs").text.count("\n") >= 2, 30,
               message="the first lines of the job")
    assert http.get(f"/jobs/{job_id}").json()["status"] == "running"
    with stream(http, f"/jobs/{job_id}/logs/stream") as messages:
        seen = read_until(messages, _ended)
    lines = [m.data for m in seen[:-1]]
    assert all(m.event == "log" for m in seen[:-1])
    assert [line["line"] for line in lines] == list(range(1, 21))
    assert [int(m.id) for m in seen[:-1]] == list(range(1, 21))
    assert [line["data"] for line in lines] == [f"line {i}" for i in range(1, 21)]
    assert {line["stream"] for line in lines} == {"stdout"}
    assert seen[-1].data == {"status": "succeeded"}


def test_log_stream_of_a_finished_job_resumes_after_last_event_id(http: httpx.Client) -> None:
    job_id = _submit(http, "chatty", 6)
    _finish(http, job_id)
    with stream(http, f"/jobs/{job_id}/logs/stream", headers={"Last-Event-ID": "4"}) as messages:
        seen = read_until(messages, _ended)
    assert [m.data["line"] for m in seen[:-1]] == [5, 6]
    assert seen[-1].data == {"status": "succeeded"}


def test_disconnect_frees_the_subscriber(http: httpx.Client) -> None:
    def clients() -> int:
        return http.get("/stats").json()["api"]["sse_clients"]

    wait_until(lambda: clients() == 0, 10, message="earlier streams to be freed")
    with stream(http, "/events") as messages:
        wait_for_comment(messages, "live")
        assert clients() == 1
    wait_until(lambda: clients() == 0, 10, message="the closed stream to be freed")


def test_sigterm_ends_open_streams_cleanly_and_exits_0(api_cluster: Cluster) -> None:
    server = start_api(api_cluster)
    # a filter nothing matches: the periodic broker.stats must not count as "more than pings"
    quiet = {"types": "nothing."}
    with server.client() as client, stream(client, "/events", params=quiet) as messages:
        wait_for_comment(messages, "live")
        server.proc.send_signal(signal.SIGTERM)
        rest = list(messages)  # the stream ends: a complete response, no transport error
    assert all(m.control for m in rest)  # pings at most
    assert server.proc.wait(15) == 0
    log = api_cluster.log_text(f"api-{server.base_url.rsplit(':', 1)[1]}")
    assert "ERROR" not in log and "Application shutdown complete" in log
