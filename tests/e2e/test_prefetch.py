"""The prefetch window on real processes: a worker holds jobs beyond its slots, yet a long
task holds none of them, a held job has not started (queued, no attempt counted, cancelled
out of the buffer), and a killed worker's held jobs go back uncounted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.cluster import ROOT, Cluster
from tests.waiting import wait_running, wait_until


class RawWorker:
    """tests/raw_worker.py: a peer with a window that starts only what it is told to."""

    def __init__(self, cluster: Cluster, tmp_path: Path, name: str, prefetch: int) -> None:
        self.log = tmp_path / f"{name}.jsonl"
        self.log.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.raw_worker", cluster.backend, name, str(prefetch),
             str(self.log)], cwd=ROOT, env=cluster.env(), stdin=subprocess.PIPE, text=True,
            start_new_session=True)
        cluster.procs.append(self.proc)

    def messages(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def held(self) -> list[tuple[str, int]]:
        return [tuple(job) for m in self.messages() if m["command"] == "JOB" for job in m["jobs"]]

    def start(self, job_id: str, attempt: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"start {job_id} {attempt}\n")
        self.proc.stdin.flush()


def test_a_long_task_does_not_hold_the_short_jobs_behind_it(cluster: Cluster) -> None:
    """One slot per worker: a 6 s task on one, 40 short jobs after it. They all finish on the
    other worker within a few seconds, long before the 6 s are up."""
    cluster.start_worker("a", "--concurrency", "1")
    client = cluster.client()
    long_id = client.submit("sleep", 6)
    wait_running(client, long_id)
    cluster.start_worker("b", "--concurrency", "1")
    short = client.submit_many({"task": "add", "args": [i, 1]} for i in range(40))
    jobs = client.wait_many(short, timeout=30)
    assert [job["result"] for job in jobs] == [i + 1 for i in range(40)]
    long_job = client.wait(long_id, timeout=30)
    assert long_job["worker"] == "a"
    assert max(job["finished_at"] for job in jobs) < long_job["finished_at"] - 2
    assert max(job["finished_at"] for job in jobs) - long_job["started_at"] < 4


def test_a_held_job_is_queued_until_started_and_a_cancel_takes_it_out(
        cluster: Cluster, tmp_path: Path) -> None:
    raw = RawWorker(cluster, tmp_path, "raw", prefetch=3)
    client = cluster.client()
    ids = [client.submit("noop", i) for i in range(4)]  # one slot + a window of 3: all four
    wait_until(lambda: len(raw.held()) == 4, 10, message="the worker to hold all four")
    assert sorted(raw.held()) == sorted((i, 1) for i in ids)
    for job in map(client.get, ids):
        assert (job["status"], job["attempts"], job["worker"]) == ("queued", 0, None)
    raw.start(ids[0], 1)
    assert wait_running(client, ids[0])["worker"] == "raw"
    assert client.get(ids[0])["attempts"] == 1
    assert client.cancel(ids[1])["status"] == "cancelled"
    wait_until(lambda: {"command": "CANCEL", "job_id": ids[1]} in raw.messages(), 10,
               message="the CANCEL of the held job")
    assert client.get(ids[2])["status"] == "queued"  # the others wait where they are


def test_jobs_a_killed_worker_held_but_never_started_keep_attempts_one(
        cluster: Cluster, tmp_path: Path) -> None:
    raw = RawWorker(cluster, tmp_path, "doomed", prefetch=5)
    client = cluster.client()
    ids = [client.submit("noop", i) for i in range(6)]
    wait_until(lambda: len(raw.held()) == 6, 10, message="the worker to hold all six")
    raw.start(ids[0], 1)  # this one it starts: its loss costs that attempt
    wait_running(client, ids[0])
    cluster.kill(raw.proc, signal.SIGKILL)
    cluster.start_worker("rescuer")
    jobs = client.wait_many(ids, timeout=30)
    assert [job["status"] for job in jobs] == ["succeeded"] * 6
    assert [job["attempts"] for job in jobs] == [2, 1, 1, 1, 1, 1]
    assert {job["worker"] for job in jobs} == {"rescuer"}
