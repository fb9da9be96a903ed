"""PgQueuer entrypoints, worker factory and producer for the peer benchmark (peer venv only).

Workers: ``python -m zjp_pgqueuer``, which is ``pgqueuer.run(worker)``: what
``pgq run zjp_pgqueuer:worker`` runs, without the CLI (whose log set-up crashes
in pgqueuer 1.6.0). PgQueuer's documented set-up: one asyncpg connection in an
``AsyncpgDriver``, a ``PgQueuer`` with the entrypoints, the defaults (batch
size 10, no concurrency cap).

PgQueuer keeps no return values (a finished job is moved to its log table
with a status), so "waiting for every result" is waiting with PgQueuer's
``CompletionWatcher`` (LISTEN/NOTIFY plus a status query, debounced 50 ms)
until every job id is ``successful``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, Job, PgQueuer, Queries
from pgqueuer.core.completion import CompletionWatcher
from zjp_common import (
    RESULT_TIMEOUT_S,
    check_statuses,
    emit,
    mark_worker,
    marked_workers,
    pg_url,
    wait_for_workers,
)

# Jobs per Queries.enqueue call (PgQueuer's batch insert: lists instead of scalars).
BATCH = 500


@asynccontextmanager
async def worker() -> AsyncIterator[PgQueuer]:
    """The factory ``pgq run`` calls: a PgQueuer with the two entrypoints."""
    conn = await asyncpg.connect(pg_url())
    try:
        pgq = PgQueuer(AsyncpgDriver(conn))

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> int:
            return int(job.payload or b"0")

        @pgq.entrypoint("ident")
        async def ident(job: Job) -> None:
            mark_worker((job.payload or b"").decode())

        yield pgq
    finally:
        await conn.close()


async def _run(
    queries: Queries, watcher: CompletionWatcher, entrypoint: str, payloads: list[bytes]
) -> list[str]:
    """Enqueue ``payloads`` in batches; wait until every job is in a terminal state."""
    waiting: list[asyncio.Future[str]] = []
    for at in range(0, len(payloads), BATCH):
        chunk = payloads[at : at + BATCH]
        ids = await queries.enqueue([entrypoint] * len(chunk), list(chunk), [0] * len(chunk))
        waiting.extend(watcher.wait_for(jid) for jid in ids)
    return list(await asyncio.wait_for(asyncio.gather(*waiting), RESULT_TIMEOUT_S))


async def _drive(n_jobs: int, n_workers: int) -> None:
    enqueue_conn = await asyncpg.connect(pg_url())
    watch_conn = await asyncpg.connect(pg_url())
    try:
        queries = Queries(AsyncpgDriver(enqueue_conn))
        watch_driver = AsyncpgDriver(watch_conn)
        async with CompletionWatcher(watch_driver, queries=Queries(watch_driver)) as watcher:
            loop = asyncio.get_running_loop()
            with tempfile.TemporaryDirectory(prefix="zjp-pgq-ident-") as marks:

                def identify(k: int) -> list[str]:
                    coro = _run(queries, watcher, "ident", [marks.encode()] * k)
                    asyncio.run_coroutine_threadsafe(coro, loop).result()
                    return marked_workers(marks)

                seen = await loop.run_in_executor(None, wait_for_workers, identify, n_workers)
            payloads = [str(i).encode() for i in range(n_jobs)]
            start = time.perf_counter()
            statuses = await _run(queries, watcher, "noop", payloads)
            seconds = time.perf_counter() - start
    finally:
        await watch_conn.close()
        await enqueue_conn.close()
    check_statuses(statuses, "successful", n_jobs)
    emit(seconds, n_jobs, seen)


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with batched ``Queries.enqueue``, wait with ``CompletionWatcher.wait_for``."""
    asyncio.run(_drive(n_jobs, n_workers))


if __name__ == "__main__":
    asyncio.run(pgqueuer.run(worker))  # SIGTERM/SIGINT stop it
