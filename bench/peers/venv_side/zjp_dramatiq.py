"""Dramatiq actors and producer for the peer benchmark (peer virtualenv only).

Workers: ``dramatiq zjp_dramatiq --processes N --threads 1``; results through
the Results middleware on a Redis backend.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend
from zjp_common import RESULT_TIMEOUT_S, check_sum, emit, redis_url, wait_for_workers

broker = RedisBroker(url=redis_url())
broker.add_middleware(Results(backend=RedisBackend(url=redis_url())))
dramatiq.set_broker(broker)

TIMEOUT_MS = RESULT_TIMEOUT_S * 1000


@dramatiq.actor(actor_name="zjp_noop", store_results=True)
def noop(x: int) -> int:
    return x


@dramatiq.actor(actor_name="zjp_ident", store_results=True)
def ident() -> int:
    return os.getpid()


def _identify(k: int) -> list[int]:
    pending = [ident.send() for _ in range(k)]
    return [m.get_result(block=True, timeout=TIMEOUT_MS) for m in pending]


def drive(n_jobs: int, n_workers: int) -> None:
    """Submit with ``actor.send``, collect with ``message.get_result(block=True)``."""
    seen = wait_for_workers(_identify, n_workers)
    start = time.perf_counter()
    pending = [noop.send(i) for i in range(n_jobs)]
    values = [m.get_result(block=True, timeout=TIMEOUT_MS) for m in pending]
    seconds = time.perf_counter() - start
    check_sum(values, n_jobs)
    emit(seconds, n_jobs, seen)
