"""arq: N ``arq zjp_arq.WorkerSettings`` processes on Redis.

Workers keep arq's defaults (``max_jobs`` 10 concurrent coroutines,
``poll_delay`` 0.5 s between queue polls) unless ``poll_delay`` is given;
the producer enqueues with ``enqueue_job`` and collects with
``job.result(poll_delay=0.005)`` in submit order (arq's default result poll
of 0.5 s would mostly measure that sleep).
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
    "{n} x `arq WorkerSettings` (max_jobs 10, worker poll_delay {poll}), "
    "enqueue_job() then job.result(poll_delay=0.005)"
)


def run(
    n_jobs: int, n_workers: int, redis_url: str | None, poll_delay: float | None = None
) -> dict:
    """Jobs/s of arq from the first ``enqueue_job`` to the last result."""
    if redis_url is None:
        raise PeerUnavailable("arq needs redis")
    require_modules("arq")
    env = peer_env(redis_url)
    if poll_delay is not None:
        env["ZJP_ARQ_POLL_DELAY"] = str(poll_delay)
    cmd = [str(peer_bin("arq")), "zjp_arq.WorkerSettings"]
    with started_all([cmd] * n_workers, env):
        record = drive("arq", n_jobs, n_workers, env)
    poll = f"{poll_delay} s" if poll_delay is not None else "0.5 s (default)"
    return result("arq", record, NOTE.format(n=n_workers, poll=poll))
