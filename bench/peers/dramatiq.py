"""Dramatiq with a Redis broker and the Results middleware on a Redis backend.

One ``dramatiq zjp_dramatiq --processes N --threads 1`` command: N worker
processes, each running one job at a time like the other peers' workers.
The producer submits with ``actor.send`` and collects with
``message.get_result(block=True)`` in submit order.
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
    "`dramatiq --processes {n} --threads 1`, redis broker + Results(RedisBackend), "
    "send() then get_result(block=True)"
)


def _worker_cmd(n_workers: int) -> list[str]:
    return [
        str(peer_bin("dramatiq")), "zjp_dramatiq", "--processes", str(n_workers),
        "--threads", "1",
    ]  # fmt: skip


def run(n_jobs: int, n_workers: int, redis_url: str | None) -> dict:
    """Jobs/s of Dramatiq from the first ``send`` to the last result."""
    if redis_url is None:
        raise PeerUnavailable("dramatiq needs redis")
    require_modules("dramatiq", "redis")
    env = peer_env(redis_url)
    with started_all([_worker_cmd(n_workers)], env):
        record = drive("dramatiq", n_jobs, n_workers, env)
    return result("dramatiq", record, NOTE.format(n=n_workers))
