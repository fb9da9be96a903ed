"""The API's token stays secret: out of the access log and out of its processes' environment."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from tests.cluster import Cluster
from tests.waiting import wait_until

from .server import start_api


def test_the_access_log_redacts_the_token_of_a_query(cluster: Cluster) -> None:
    token = secrets.token_hex(16)
    server = start_api(cluster, token=token, env={"ZJOBS_ACCESS_LOG": "1"})
    for path in (f"/?token={token}", f"/jobs?status=queued&token={token}&limit=1"):
        assert httpx.get(server.base_url + path, timeout=10).status_code == 200
    log_name = f"api-{server.base_url.rsplit(':', 1)[1]}"

    def logged() -> str | None:
        text = cluster.log_text(log_name)
        return text if "/jobs?status=queued&token=REDACTED&limit=1" in text else None

    text = wait_until(logged, 10, message="the access line of the request")
    assert '"GET /?token=REDACTED HTTP/1.1" 200' in text
    assert token not in text


def test_the_api_processes_get_the_token_but_not_in_their_environment(cluster: Cluster) -> None:
    """With --api-workers, the children the API spawns check the token (given in their
    settings, not inherited): not one of them is open, and none has it in its environ."""
    token = secrets.token_hex(16)
    server = start_api(cluster, token=token, env={"ZJOBS_API_WORKERS": "2"})
    children: set[int] = set()
    with server.client() as authorised, httpx.Client(base_url=server.base_url) as stranger:

        def both_seen() -> bool:  # each request on a new connection, spread by the kernel
            response = authorised.get("/health", headers={"Connection": "close"})
            children.add(response.json()["api"]["pid"])
            assert stranger.get("/jobs", headers={"Connection": "close"}).status_code == 401
            return len(children) == 2

        wait_until(both_seen, 30, message="both API processes to answer")
    assert server.proc.pid not in children
    for pid in children:
        assert token.encode() not in Path(f"/proc/{pid}/environ").read_bytes(), pid
