"""Deep queues on real processes: the broker holds a window of each queue, the rest is on disk.

Priorities, run_at, pause and rate limits behave past the window's edge as inside it, and a
restarted broker serves without reading its backlog into memory.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.cluster import Cluster
from tests.waiting import holds_for, wait_until
from zjobs import Client

BATCH = 10_000


def _submit(client: Client, count: int, **fields) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, BATCH):
        ids += client.submit_many([{"task": "noop", "args": [i], **fields}
                                   for i in range(start, min(start + BATCH, count))])
    return ids


def _started(client: Client, since: int) -> list[str]:
    """The ids of the jobs started since the event `since`, in the order they started."""
    events = client.replay(since, types=("job.started",), limit=100_000)["events"]
    return [event["job_id"] for event in events]


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def test_a_high_priority_job_behind_50000_low_ones_runs_next(cluster: Cluster) -> None:
    client = cluster.client(timeout=60)
    low = _submit(client, 50_000)  # 10,000 of them in the broker's window, the rest on disk
    high = client.submit("noop", "high", priority=10)
    since = client.ping()["seq"]
    cluster.start_worker("w1", "--concurrency", "1")
    assert client.result(high, timeout=30) == "high"
    started = wait_until(lambda: (s := _started(client, since)) and len(s) >= 20 and s, 30,
                         message="the first jobs to start")
    assert started[0] == high
    assert started[1:20] == low[:19]  # then FIFO


def test_a_delayed_job_deep_in_the_backlog_runs_at_its_time(bare_cluster: Cluster) -> None:
    bare_cluster.start_broker("--queue-window", "100")
    client = bare_cluster.client(timeout=60)
    now = time.time()
    later = client.submit_many([{"task": "noop", "args": [i], "run_at": now + 3600 + i}
                                for i in range(2_000)])
    _submit(client, 2_000, queue="elsewhere")  # and a deep queue that nobody serves
    due = now + 4
    soon = client.submit("noop", "soon", run_at=due)  # submitted last, 2,000 others before it
    bare_cluster.start_worker("w1")
    assert client.result(soon, timeout=30) == "soon"
    job = client.get(soon)
    assert due <= job["started_at"] < due + 1.5, job["started_at"] - due
    assert {j["status"] for j in client.wait_many(later[:50], timeout=0)} == {"scheduled"}


def test_pause_and_a_rate_limit_hold_across_the_windows_edge(bare_cluster: Cluster) -> None:
    bare_cluster.start_broker("--queue-window", "20")
    client = bare_cluster.client(timeout=60)
    client.configure_queue("p", paused=True)
    ids = _submit(client, 300, queue="p")  # 20 in the window, 280 on disk
    bare_cluster.start_worker("w1", "--queues", "p,default")
    assert client.result(client.submit("noop", "up"), timeout=20) == "up"
    holds_for(lambda: client.stats()["queues"]["p"]["queued"] == 300, 1.5,
              message="a paused deep queue starting nothing")
    client.configure_queue("p", paused=False, rate_limit=100)
    jobs = client.wait_many(ids, timeout=60)
    assert {job["status"] for job in jobs} == {"succeeded"}
    starts = sorted(job["started_at"] for job in jobs)
    # a burst of 100, then 200 more at 100 a second: the last starts 2 s after the first
    assert 1.8 <= starts[-1] - starts[0] < 4.0, starts[-1] - starts[0]
    # at most burst + rate x T starts in any T seconds: 200 take at least 1 s
    assert all(b - a >= 0.9 for a, b in zip(starts, starts[200:], strict=False)), \
        "200 starts within 0.9 s: the limit did not hold"


def test_a_purge_cancels_a_deep_queue_all_of_it(bare_cluster: Cluster) -> None:
    bare_cluster.start_broker("--queue-window", "50")
    client = bare_cluster.client(timeout=60)
    ids = _submit(client, 1_000, queue="p")
    assert client.purge("p") == 1_000
    wait_until(lambda: client.stats()["queues"]["p"]["cancelled"] == 1_000, 20,
               message="the purge to reach the bottom of the queue")
    assert client.stats()["queues"]["p"]["queued"] == 0
    assert {job["status"] for job in client.wait_many(ids[-100:], timeout=0)} == {"cancelled"}


def test_a_restarted_broker_serves_a_deep_backlog_without_reading_it(
        bare_cluster: Cluster) -> None:
    bare_cluster.start_broker("--queue-window", "100")
    client = bare_cluster.client(timeout=60)
    client.stats()
    base_mib = _rss_mib(bare_cluster.broker.pid)
    blob = "x" * 2048
    ids: list[str] = []
    for start in range(0, 30_000, 5_000):  # 60 MiB of arguments: were they read, RSS says so
        ids += client.submit_many([{"task": "noop", "args": [[blob, i]]}
                                   for i in range(start, start + 5_000)])
    bare_cluster.kill(bare_cluster.broker, signal.SIGTERM)
    bare_cluster.start_broker("--queue-window", "100")
    stats = client.stats()
    assert stats["jobs"]["queued"] == 30_000 and stats["queues"]["default"]["queued"] == 30_000
    peak_mib = _rss_mib(bare_cluster.broker.pid, "VmHWM")
    assert peak_mib < base_mib + 40, (base_mib, peak_mib)
    bare_cluster.start_worker("w1")
    assert [job["result"][1] for job in client.wait_many(ids[:3], timeout=30)] == [0, 1, 2]
