"""Results, artifacts and log lines near or over --max-message, on real processes."""

from __future__ import annotations

import random
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.server import start_api
from tests.cluster import Cluster

MIB = 1024 * 1024
MAX_MESSAGE = 16 * MIB
ARTIFACT_BYTES = 40 * MIB
SEED = 7

WRITER = textwrap.dedent(f"""
    import os, random
    os.makedirs("out", exist_ok=True)
    with open("out/big.bin", "wb") as f:
        f.write(random.Random({SEED}).randbytes({ARTIFACT_BYTES}))
    print("written")
""")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, broker_args=["--max-message", str(MAX_MESSAGE)])
    try:
        cluster.start_broker()
        cluster.start_worker("big", "--allow-exec", "--max-message", str(MAX_MESSAGE))
        yield cluster
    finally:
        cluster.close()


def test_artifact_over_the_message_limit_arrives_whole_and_downloads(limited: Cluster) -> None:
    client = limited.client()
    job_id = client.submit_exec("main.py", {"main.py": WRITER.encode()}, timeout_s=60)
    job = client.wait(job_id, timeout=90)
    assert job["status"] == "succeeded", job["error"]
    assert [line["data"] for line in client.logs(job_id)] == ["written"]
    api = start_api(limited)
    with api.client(timeout=60) as http:
        listed = http.get(f"/jobs/{job_id}/artifacts").json()["artifacts"]
        assert [(a["name"], a["size"]) for a in listed] == [("big.bin", ARTIFACT_BYTES)]
        response = http.get(f"/jobs/{job_id}/artifacts/big.bin")
    assert response.status_code == 200
    assert response.content == random.Random(SEED).randbytes(ARTIFACT_BYTES)


def test_result_over_the_message_limit_fails_at_once(limited: Cluster) -> None:
    client = limited.client()
    started = time.monotonic()
    job_id = client.submit("big_result", MAX_MESSAGE + MIB)
    job = client.wait(job_id, timeout=30)
    assert time.monotonic() - started < 20
    assert job["status"] == "failed"
    assert job["error"]["type"] == "ResultTooLarge"
    assert str(MAX_MESSAGE) in job["error"]["message"]


def test_log_line_over_the_message_limit_arrives_truncated(limited: Cluster) -> None:
    client = limited.client()
    job_id = client.submit("shout", MAX_MESSAGE + MIB)
    assert client.result(job_id, timeout=30) == "shouted"
    [line] = [line["data"] for line in client.logs(job_id)]
    assert line.startswith("x" * 1000) and len(line.encode()) < MAX_MESSAGE
    assert line.endswith(f"[line truncated: {MAX_MESSAGE + MIB} bytes exceed the message limit]")
