"""procrastinate app, tasks and producer for the peer benchmark (peer virtualenv only).

Workers: ``procrastinate --app zjp_procrastinate.app worker`` with
procrastinate's defaults (``--concurrency`` 1, LISTEN/NOTIFY on, jobs kept
after they finish). The app is procrastinate's documented set-up: an ``App``
on a ``PsycopgConnector`` (psycopg 3, async pool).

procrastinate keeps no return values (a job row only gets a status), so
"waiting for every result" is polling ``JobManager.get_job_status_async`` for
each job in submit order (every 5 ms while one is unfinished, like the arq
peer's result poll) until it has ended.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

import procrastinate
from zjp_common import (
    RESULT_TIMEOUT_S,
    check_statuses,
    emit,
    mark_worker,
    marked_workers,
    wait_for_workers,
)

# Jobs per Task.batch_defer_async call (one INSERT per batch).
BATCH = 500
# How often the producer asks PostgreSQL for the status of the job it waits on.
STATUS_POLL_S = 0.005
QUEUE, IDENT_QUEUE = "zjp", "zjp_ident"
FINAL = ("succeeded", "failed", "cancelled", "aborted")

# ZJP_PG_URL is set for every peer process; "" only lets the module import without it.
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("ZJP_PG_URL", ""))
)


@app.task(name="noop", queue=QUEUE)
async def noop(x: int) -> int:
    return x


@app.task(name="ident", queue=IDENT_QUEUE)
async def ident(directory: str) -> None:
    mark_worker(directory)


async def _status(job_id: int, deadline: float) -> str:
    """Poll one job's status until it is final (``get_job_status_async``: a lookup by id)."""
    while True:
        status = (await app.job_manager.get_job_status_async(job_id)).value
        if status in FINAL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status!r}")
        await asyncio.sleep(STATUS_POLL_S)


async def _run(task: procrastinate.tasks.Task, kwargs: list[dict]) -> list[str]:
    """Defer ``kwargs`` in batches; wait for each job's final status in submit order."""
    ids: list[int] = []
    for at in range(0, len(kwargs), BATCH):
        ids += await task.batch_defer_async(*kwargs[at : at + BATCH])
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    return [await _status(job_id, deadline) for job_id in ids]


async def _drive(n_jobs: int, n_workers: int) -> None:
    async with app.open_async():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory(prefix="zjp-procrastinate-ident-") as marks:

            def identify(k: int) -> list[str]:
                coro = _run(ident, [{"directory": marks}] * k)
                asyncio.run_coroutine_threadsafe(coro, loop).result()
                return marked_workers(marks)

            seen = await loop.run_in_executor(None, wait_for_workers, identify, n_workers)
        start = time.perf_counter()
        statuses = await _run(noop, [{"x": i} for i in range(n_jobs)])
        seconds = time.perf_counter() - start
    check_statuses(statuses, "succeeded", n_jobs)
    emit(seconds, n_jobs, seen)


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with ``Task.batch_defer_async``, wait with ``get_job_status_async``."""
    asyncio.run(_drive(n_jobs, n_workers))
