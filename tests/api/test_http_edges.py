"""HTTP that goes wrong below the routes, on a real API process: every answer is still the
JSON error format, and no connection is held for ever."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.cluster import Cluster

from .server import ApiServer, sse_messages, start_api

BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def quick_api(api_cluster: Cluster) -> ApiServer:
    return start_api(api_cluster, env={"ZJOBS_API_BODY_TIMEOUT": str(BODY_TIMEOUT_S)})


def _raw(api: ApiServer, request: bytes, timeout_s: float = 10.0) -> tuple[bytes, float]:
    """Send `request` on a fresh connection; everything the server sends until it closes the
    connection, and how long that took."""
    host, port = api.base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def _status_and_error(answer: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)["error"]


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /jobs HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    b"GET /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
])
def test_a_request_the_parser_refuses_is_a_json_400(quick_api: ApiServer,
                                                     request_bytes: bytes) -> None:
    answer, _ = _raw(quick_api, request_bytes)
    status, headers, error = _status_and_error(answer)
    assert status == 400 and headers["content-type"] == "application/json"
    assert error["code"] == "bad_request" and "malformed HTTP request" in error["message"]


def test_a_body_shorter_than_its_length_is_408_and_the_connection_closed(
        quick_api: ApiServer) -> None:
    request = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 100\r\n\r\n" + b'{"task": "noop"')
    answer, took = _raw(quick_api, request, timeout_s=BODY_TIMEOUT_S + 20)
    status, headers, error = _status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    assert "Content-Length" in error["message"] and headers["connection"] == "close"
    assert BODY_TIMEOUT_S <= took < BODY_TIMEOUT_S + 10
    with quick_api.client() as http:  # and the API serves on
        assert http.post("/jobs", json={"task": "noop"}).status_code == 201


def test_a_stream_outlives_the_body_timeout(quick_api: ApiServer) -> None:
    """The read timeout holds for the body only: an SSE stream, which waits on its request
    for a disconnect, stays open."""
    with quick_api.client() as http, http.stream("GET", "/events") as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        for _ in sse_messages(stream.iter_lines()):  # keep-alive comments every second
            if time.monotonic() - started > 3 * BODY_TIMEOUT_S:
                break
        assert time.monotonic() - started > 3 * BODY_TIMEOUT_S, "the stream ended early"
