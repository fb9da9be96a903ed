"""Tasks the tests run on real workers."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from tests.waiting import wait_until
from zjobs import Retry, progress, task


@task
def noop(x: Any = None) -> Any:
    return x


@task
def add(a: float, b: float) -> float:
    return a + b


@task
def sleep(seconds: float) -> float:
    time.sleep(seconds)  # noqa - the sleep is this task's work, not synchronisation
    return seconds


@task
async def async_sleep(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@task
def pid_and_sleep(path: str, seconds: float) -> int:
    """Writes its pool process pid to `path` (so a test can watch it), then sleeps."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)  # noqa - the task's work: a test stops it by timeout or cancel
    return os.getpid()


@task
def wait_for_file(path: str, timeout: float = 30.0) -> str:
    """Blocks until `path` exists: lets a test hold a job in `running` as long as it likes."""
    wait_until(Path(path).exists, timeout, message=f"{path} to exist")
    return Path(path).read_text()


@task
def touch_then_wait(started: str, release: str, timeout: float = 30.0) -> str:
    Path(started).write_text(str(os.getpid()))
    return wait_for_file(release, timeout)


@task
def chatty(lines: int, pause: float = 0.0) -> int:
    for i in range(1, lines + 1):
        print(f"line {i}")
        progress(i / lines, f"{i}/{lines}")
        if pause:
            time.sleep(pause)  # noqa - paces the output so a test can join mid-job
    return lines


@task
def flaky(counter_path: str, failures: int) -> int:
    """Fails `failures` times (counted in a file), then succeeds with the attempt number."""
    path = Path(counter_path)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < failures:
        raise ValueError(f"failure {count + 1}")
    return count + 1


@task
def retry_me(counter_path: str) -> int:
    path = Path(counter_path)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count == 0:
        raise Retry(delay_s=0.1)
    return count + 1


@task
def big_result(size: int) -> bytes:
    """A return value of `size` bytes (over the message limit, when a test wants it)."""
    return b"r" * size


@task
def shout(size: int) -> str:
    """Prints one line of `size` bytes."""
    print("x" * size)
    return "shouted"


def _mark_run(runs: str) -> None:
    """A line in `runs` for this start (a test counts executions)."""
    with open(runs, "a") as out:
        out.write(f"{os.getpid()}\n")


def _runs_so_far(runs: str) -> int:
    return len(Path(runs).read_text().splitlines())


@task
def count_then_wait(runs: str, release: str, timeout: float = 60.0) -> int:
    """Appends a line to `runs` each time it starts (a test counts executions), then blocks
    until `release` exists; returns how many times it has started."""
    _mark_run(runs)
    wait_for_file(release, timeout)
    return _runs_so_far(runs)


@task
async def async_count(runs: str) -> int:
    """`count_and_sleep` for the async path: a line in `runs` each time it starts."""
    _mark_run(runs)
    return _runs_so_far(runs)


@task
def count_and_sleep(runs: str, seconds: float) -> int:
    """Appends a line to `runs` each time it starts (a test counts executions), then sleeps
    `seconds`; returns how many times it has started."""
    _mark_run(runs)
    time.sleep(seconds)  # noqa - the job's own work, not synchronisation
    return _runs_so_far(runs)


@task(pool="thread")
def in_a_thread(x: Any) -> dict[str, Any]:
    """A sync task run in the worker's threads: says where it ran, logs and reports progress."""
    import threading

    print(f"thread got {x}")
    progress(0.5, "halfway")
    return {"x": x, "thread": threading.current_thread().name, "pid": os.getpid()}


@task(pool="thread")
def thread_sleep(seconds: float) -> float:
    """Blocks its thread (a timeout cannot kill it)."""
    time.sleep(seconds)  # noqa - the job's own work, not synchronisation
    return seconds


@task
def spin(path: str, seconds: float) -> int:
    """Writes its process id to `path`, then loops in pure Python for `seconds`."""
    Path(path).write_text(str(os.getpid()))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return os.getpid()


@task
def c_sleep(path: str, seconds: int) -> int:
    """Writes its process id to `path`, then blocks in a C call (libc's sleep) for `seconds`."""
    import ctypes

    Path(path).write_text(str(os.getpid()))
    ctypes.CDLL(None).sleep(seconds)
    return os.getpid()


@task
def gil_sleep(path: str, seconds: int) -> int:
    """Like `c_sleep`, but holding the GIL through the call (ctypes.PyDLL): nothing else in
    its process runs, its heartbeats included."""
    import ctypes

    Path(path).write_text(str(os.getpid()))
    ctypes.PyDLL(None).sleep(seconds)
    return os.getpid()


@task
def pid() -> int:
    return os.getpid()
