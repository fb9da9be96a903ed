"""Sync tasks in slots of their own: a timeout or a cancel really stops the work.

Python code stops within a second, in its process; code blocked outside Python (a sleep,
a C call) stops when its process ends, and the worker starts another; a slot whose C code
holds the GIL (so it cannot even heartbeat) is replaced by the worker. Real processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.waiting import wait_until
from zjobs import Client, JobCancelled, JobFailed


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" in status.read_text()


def _pid(pid_file: Path) -> int:
    """The pid a job wrote, once it has written it (the file exists before its content)."""
    text = wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 20,
                      message="the job to start")
    return int(text)


def _started(client: Client, job_id: str, pid_file: Path) -> int:
    pid = _pid(pid_file)
    wait_until(lambda: client.get(job_id)["status"] == "running", 5, message="running")
    return pid


def _fails_with(client: Client, job_id: str, kind: str) -> dict:
    with pytest.raises(JobFailed) as caught:
        client.result(job_id, timeout=20)
    assert caught.value.error["type"] == kind
    return caught.value.error


@pytest.fixture
def solo(cluster: Cluster) -> Client:
    """One worker with one sync slot: every sync job runs in the same slot process."""
    cluster.start_worker("solo", "--concurrency", "1")
    return cluster.client()


def test_a_timeout_stops_python_code_within_a_second_in_its_process(solo: Client,
                                                                     tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job_id = solo.submit("spin", str(pid_file), 60, timeout_s=1)
    pid = _started(solo, job_id, pid_file)
    _fails_with(solo, job_id, "Timeout")
    job = solo.get(job_id)
    assert job["finished_at"] - job["started_at"] < 2.0  # 1 s, and under a second more
    assert solo.result(solo.submit("pid"), timeout=20) == pid  # the same slot, not replaced


@pytest.mark.parametrize("task", ["pid_and_sleep", "c_sleep"])
def test_a_timeout_stops_code_blocked_outside_python_by_replacing_its_process(
        solo: Client, tmp_path: Path, task: str) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    job_id = solo.submit(task, str(pid_file), 60, timeout_s=1)
    pid = _started(solo, job_id, pid_file)
    error = _fails_with(solo, job_id, "Timeout")
    assert "timeout of 1" in error["message"] and "replaced" in error["message"]
    assert time.monotonic() - started < 10
    wait_until(lambda: _gone(pid), 10, message="the stuck slot process gone")
    assert solo.result(solo.submit("add", 1, 1), timeout=20) == 2  # its successor serves
    assert solo.result(solo.submit("pid"), timeout=20) != pid


def test_a_cancel_stops_python_code_at_once_in_its_process(solo: Client, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job_id = solo.submit("spin", str(pid_file), 60)
    pid = _started(solo, job_id, pid_file)
    cancelled_at = time.monotonic()
    assert solo.cancel(job_id)["status"] == "cancelled"
    assert solo.result(solo.submit("pid"), timeout=20) == pid
    assert time.monotonic() - cancelled_at < 1.5  # the slot was free again within a second


@pytest.mark.parametrize("task", ["pid_and_sleep", "c_sleep"])
def test_a_cancel_stops_code_blocked_outside_python_by_replacing_its_process(
        solo: Client, tmp_path: Path, task: str) -> None:
    pid_file = tmp_path / "pid"
    job_id = solo.submit(task, str(pid_file), 60)
    pid = _started(solo, job_id, pid_file)
    assert solo.cancel(job_id)["status"] == "cancelled"
    with pytest.raises(JobCancelled):
        solo.result(job_id, timeout=5)
    wait_until(lambda: _gone(pid), 10, message="the cancelled job's process gone")
    next_id = solo.submit("add", 2, 2)
    assert solo.result(next_id, timeout=20) == 4
    assert solo.get(next_id)["worker"] == "solo"


def test_a_slot_frozen_in_c_holding_the_gil_is_replaced_and_its_job_times_out(
        solo: Client, tmp_path: Path) -> None:
    """The slot's own watch thread cannot run: the worker sees its board stop ticking."""
    pid_file = tmp_path / "pid"
    job_id = solo.submit("gil_sleep", str(pid_file), 60, timeout_s=0.2)
    pid = _pid(pid_file)
    error = _fails_with(solo, job_id, "Timeout")
    assert "replaced" in error["message"]
    assert _gone(pid)
    assert solo.result(solo.submit("add", 3, 3), timeout=20) == 6


def test_a_result_goes_out_before_the_next_job_starts(solo: Client, tmp_path: Path) -> None:
    """A job that ran a millisecond or more is reported before its slot starts the next one:
    a slot lost during that next job (here frozen in C holding the GIL, then replaced) runs
    it again never; only the job it was running is retried. (The results of a run of
    shorter jobs go out together, FLUSH_EVERY_S apart at most.)"""
    runs, pid_file = tmp_path / "runs", tmp_path / "pid"
    first, frozen = solo.submit_many([
        {"task": "count_and_sleep", "args": [str(runs), 0.002]},
        {"task": "gil_sleep", "args": [str(pid_file), 60], "timeout_s": 0.2}])
    _fails_with(solo, frozen, "Timeout")  # its slot was replaced
    assert solo.result(first, timeout=20) == 1
    assert solo.get(first)["attempts"] == 1
    assert len(runs.read_text().splitlines()) == 1


def test_async_tasks_run_many_at_once_on_a_default_worker(cluster: Cluster) -> None:
    """--async-concurrency (100) is apart from the sync slots (the CPU count): 50 one-second
    async tasks on one default worker take about a second, not 25."""
    cluster.start_worker("default")
    client = cluster.client()
    started = time.monotonic()
    ids = client.submit_many({"task": "async_sleep", "args": [1]} for _ in range(50))
    jobs = client.wait_many(ids, timeout=30)
    assert [job["status"] for job in jobs] == ["succeeded"] * 50
    assert time.monotonic() - started < 4
