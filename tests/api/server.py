"""The real API process for tests, and a small Server-Sent Events reader."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster import Cluster
from tests.waiting import free_port, wait_until

SSE_PING_S = "1"


@dataclass
class ApiServer:
    base_url: str
    proc: subprocess.Popen
    token: str | None = None

    def client(self, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base_url, headers=headers,
                            timeout=kw.pop("timeout", 30.0), **kw)


def start_api(cluster: Cluster, *, token: str | None = None, frontend: str | None = None,
              expect_status: int = 200, env: dict[str, str] | None = None) -> ApiServer:
    """`zjobs api` on a free port; returns once /health answers `expect_status`."""
    port = free_port()
    environ = {**cluster.env(), "ZJOBS_API_SSE_PING": SSE_PING_S, **(env or {})}
    environ.pop("ZJOBS_API_TOKEN", None)
    if token:
        environ["ZJOBS_API_TOKEN"] = token
    if frontend:
        environ["ZJOBS_FRONTEND"] = frontend
    proc = cluster.spawn(["api", "--host", "127.0.0.1", "--port", str(port)], f"api-{port}",
                         env=environ)
    server = ApiServer(f"http://127.0.0.1:{port}", proc, token)
    wait_until(lambda: _health(server) == expect_status, 30,
               message=f"the API on port {port} to answer /health with {expect_status}")
    return server


def _health(server: ApiServer) -> int | None:
    if server.proc.poll() is not None:
        raise AssertionError(f"the API process exited with {server.proc.returncode}")
    try:
        return httpx.get(f"{server.base_url}/health", timeout=5).status_code
    except httpx.TransportError:
        return None


# ---------------------------------------------------------------- SSE


@dataclass
class Message:
    event: str = "message"
    id: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comment: str | None = None
    retry: str | None = None

    @property
    def control(self) -> bool:
        """A comment or a `retry:` alone: no event for the application."""
        return (self.comment is not None or self.retry is not None) and not self.data_lines

    @property
    def data(self) -> Any:
        return json.loads("\n".join(self.data_lines))


def sse_messages(lines: Iterator[str]) -> Iterator[Message]:
    """Messages of an event stream, comments included (as messages with only `comment`)."""
    message = Message()
    touched = False
    for line in lines:
        if line == "":
            if touched:
                yield message
            message, touched = Message(), False
            continue
        touched = True
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "":
            message.comment = value
        elif name == "event":
            message.event = value
        elif name == "id":
            message.id = value
        elif name == "data":
            message.data_lines.append(value)
        elif name == "retry":
            message.retry = value


def read_until(messages: Iterator[Message], done: Callable[[list[Message]], bool],
               limit: int = 100_000) -> list[Message]:
    """Messages (comments left out) until `done(seen)` is true."""
    seen: list[Message] = []
    for message in messages:
        if message.control:
            continue
        seen.append(message)
        if done(seen) or len(seen) >= limit:
            return seen
    raise AssertionError(f"the stream ended after {len(seen)} messages")


def wait_for_comment(messages: Iterator[Message], text: str) -> list[Message]:
    """Read up to the comment `: text`; returns the messages before it."""
    before: list[Message] = []
    for message in messages:
        if message.comment == text and not message.data_lines:
            return before
        if not message.control:
            before.append(message)
    raise AssertionError("the stream ended")
