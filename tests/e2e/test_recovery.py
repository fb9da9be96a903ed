"""Clients and workers across a broker outage: real processes, the broker SIGKILLed."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import AsyncClient


def _restart_broker(cluster: Cluster) -> None:
    assert cluster.broker is not None
    cluster.kill(cluster.broker)
    cluster.start_broker()  # same ports, same store


def test_a_wait_pending_over_a_broker_restart_gets_the_result(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    client = cluster.client(timeout=3)
    job_id = client.submit("sleep", 2)
    outcome: dict[str, Any] = {}

    def wait() -> None:
        try:
            outcome["result"] = client.result(job_id, timeout=20)
        except Exception as exc:  # the test reports whatever it was
            outcome["error"] = exc

    waiter = threading.Thread(target=wait)
    waiter.start()
    # the WAIT has been sent once the client holds it as outstanding
    wait_until(lambda: client._outstanding, 10, message="the WAIT to be sent")
    _restart_broker(cluster)
    waiter.join(30)
    assert outcome == {"result": 2}


def test_async_client_wait_pending_over_a_broker_restart_gets_the_result(
        cluster: Cluster) -> None:
    cluster.start_worker("w1")

    async def scenario() -> Any:
        async with AsyncClient(cluster.frontend, timeout=3) as client:
            job_id = await client.submit("sleep", 2)
            waiting = asyncio.ensure_future(client.result(job_id, timeout=20))
            await client.ping()  # same connection, so the broker has the WAIT now
            _restart_broker(cluster)
            return await waiting

    assert asyncio.run(scenario()) == 2


def test_worker_comes_back_within_five_seconds_after_a_long_outage(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    assert cluster.broker is not None
    cluster.kill(cluster.broker)
    # five reconnect rounds: an uncapped backoff would now be at 16 s
    wait_until(lambda: cluster.log_text("worker-w1").count("broker.lost") >= 5, 40,
               message="the worker to retry five times")
    started = time.monotonic()
    cluster.start_broker()
    cluster.wait_for_worker("w1", timeout=20)
    assert time.monotonic() - started < 7.5
