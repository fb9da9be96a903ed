"""Celery app, tasks and producer for the peer benchmark (peer virtualenv only).

Workers: ``celery -A zjp_celery worker --pool prefork --concurrency 1``.
"""

from __future__ import annotations

import gc
import os
import time

from celery import Celery
from zjp_common import RESULT_TIMEOUT_S, check_sum, emit, redis_url, wait_for_workers

app = Celery("zjp", broker=redis_url(), backend=redis_url())
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="zjp.noop")
def noop(x: int) -> int:
    return x


@app.task(name="zjp.ident")
def ident() -> int:
    return os.getpid()


def _identify(k: int) -> list[int]:
    pending = [ident.delay() for _ in range(k)]
    return [r.get(timeout=RESULT_TIMEOUT_S) for r in pending]


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with ``delay``, collect with ``AsyncResult.get`` in submit order.

    The garbage collector is off: an AsyncResult collected in the middle of a
    redis PubSub command runs its __del__ (unsubscribe) re-entrantly and
    deadlocks the producer (seen here with celery 5.6 and redis-py 5.3).
    """
    gc.disable()
    seen = wait_for_workers(_identify, n_workers)
    start = time.perf_counter()
    pending = [noop.delay(i) for i in range(n_jobs)]
    values = [r.get(timeout=RESULT_TIMEOUT_S) for r in pending]
    seconds = time.perf_counter() - start
    check_sum(values, n_jobs)
    emit(seconds, n_jobs, seen)
