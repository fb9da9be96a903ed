"""Waiting on conditions with a deadline: the only way tests synchronise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> T:
    """Return the first truthy value of `condition()`; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        # the poll interval of a wait on a condition with a deadline, not synchronisation
        time.sleep(interval)  # noqa


def holds_for(condition: Callable[[], object], duration: float, interval: float = 0.05,
              message: str = "condition") -> None:
    """Check that `condition()` stays truthy for `duration` seconds; AssertionError the
    first time it is not. For what must *not* happen (a paused queue starting a job)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not condition():
            raise AssertionError(f"{message} stopped holding before {duration} s")
        time.sleep(interval)  # noqa - the poll interval of a bounded check, as in wait_until
    if not condition():
        raise AssertionError(f"{message} stopped holding at {duration} s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_running(client: Any, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The job once the broker has it `running`: a worker with a prefetch window reports a
    start with its next flush (a watch tick at most), so a job's own side effect can come
    first."""

    def running() -> dict[str, Any] | None:
        job = client.get(job_id)
        return job if job["status"] == "running" else None

    return wait_until(running, timeout, message=f"job {job_id} running")
