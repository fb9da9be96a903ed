"""The benchmark's no-op job: take an int, return it."""

from __future__ import annotations

from zjobs import task


@task
async def noop(x: int) -> int:
    """Async: runs on the worker's event loop, so a worker can hold many in flight."""
    return x


@task
def noop_sync(x: int) -> int:
    """Sync: runs in the worker's process pool (one job per pool process at a time)."""
    return x


@task(pool="thread")
def noop_thread(x: int) -> int:
    """Sync, in the worker's threads: no pipe to a pool process, no pickling."""
    return x


@task
def record(path: str, x: int, seconds: float = 0.02) -> int:
    """Sync: append `x` to the file at `path` (one line per execution), then take a moment.

    The fault scenarios count executions from that file: a job run twice shows
    its number twice, one that failed without running shows it never.
    """
    import os
    import time

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{x}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return x
