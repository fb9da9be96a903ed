"""The benchmark's no-op job: take an int, return it."""

from __future__ import annotations

from worker import task


@task
async def noop(x: int) -> int:
    """Async: runs on the worker's event loop, so a worker can hold many in flight."""
    return x


@task
def noop_sync(x: int) -> int:
    """Sync: runs in the worker's process pool (one job per pool process at a time)."""
    return x
