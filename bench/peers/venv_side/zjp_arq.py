"""arq functions, worker settings and producer for the peer benchmark (peer virtualenv only).

Workers: ``arq zjp_arq.WorkerSettings`` with arq's defaults (``max_jobs`` 10,
``poll_delay`` 0.5 s) unless ZJP_ARQ_POLL_DELAY is set.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from zjp_common import RESULT_TIMEOUT_S, check_sum, emit, redis_url, wait_for_workers

# How often the producer polls redis for a job's result (arq's default is 0.5 s).
RESULT_POLL_S = 0.005


async def noop(ctx: dict[str, Any], x: int) -> int:
    return x


async def ident(ctx: dict[str, Any]) -> int:
    return os.getpid()


class WorkerSettings:
    functions = [noop, ident]
    redis_settings = RedisSettings.from_dsn(redis_url())
    if os.environ.get("ZJP_ARQ_POLL_DELAY"):
        poll_delay = float(os.environ["ZJP_ARQ_POLL_DELAY"])


async def _run(pool: ArqRedis, name: str, args: list[tuple[Any, ...]]) -> list[Any]:
    jobs = [await pool.enqueue_job(name, *a) for a in args]
    return [await j.result(timeout=RESULT_TIMEOUT_S, poll_delay=RESULT_POLL_S) for j in jobs]


async def _drive(n_jobs: int, n_workers: int) -> None:
    pool = await create_pool(WorkerSettings.redis_settings)
    try:
        loop = asyncio.get_running_loop()
        seen = await loop.run_in_executor(
            None,
            wait_for_workers,
            lambda k: asyncio.run_coroutine_threadsafe(
                _run(pool, "ident", [()] * k), loop
            ).result(),
            n_workers,
        )
        start = time.perf_counter()
        values = await _run(pool, "noop", [(i,) for i in range(n_jobs)])
        seconds = time.perf_counter() - start
    finally:
        await pool.aclose()
    check_sum(values, n_jobs)
    emit(seconds, n_jobs, seen)


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with ``enqueue_job``, collect with ``job.result(poll_delay=5 ms)``."""
    asyncio.run(_drive(n_jobs, n_workers))
