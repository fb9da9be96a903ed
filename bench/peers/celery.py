"""Celery with Redis as broker and result backend.

N separate ``celery worker --pool prefork --concurrency 1`` processes (each a
main process plus one pool child), default settings otherwise (prefetch
multiplier 4, acks early, JSON). The producer submits with ``delay`` and
collects with ``AsyncResult.get`` in submit order.
"""

from __future__ import annotations

from bench.peers._common import (
    PeerUnavailable,
    drive,
    peer_bin,
    peer_env,
    require_modules,
    result,
    started_all,
)

NOTE = (
    "{n} x `celery worker --pool prefork --concurrency 1` (one worker command per "
    "process), redis broker + result backend, delay() then AsyncResult.get()"
)


def _worker_cmd(k: int) -> list[str]:
    return [
        str(peer_bin("celery")), "-A", "zjp_celery", "worker", "--pool", "prefork",
        "--concurrency", "1", "--loglevel", "WARNING", "-n", f"zjp{k}@%h",
    ]  # fmt: skip


def run(n_jobs: int, n_workers: int, redis_url: str | None) -> dict:
    """Jobs/s of Celery from the first ``delay`` to the last ``get``."""
    if redis_url is None:
        raise PeerUnavailable("celery needs redis")
    require_modules("celery", "redis")
    env = peer_env(redis_url)
    with started_all([_worker_cmd(k) for k in range(n_workers)], env):
        record = drive("celery", n_jobs, n_workers, env)
    return result("celery", record, NOTE.format(n=n_workers))
